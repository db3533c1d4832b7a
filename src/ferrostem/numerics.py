"""Two small statistics every stage shares: column z-scores and Benjamini-Hochberg adjusted p-values."""

from __future__ import annotations

from typing import overload

import numpy as np
import pandas as pd


def standardise(values: pd.DataFrame) -> pd.DataFrame:
    """Column z-scores with the sample SD; constant columns become all-NaN."""
    sd = values.std(ddof=1)
    return (values - values.mean()) / sd.where(sd > 0)


@overload
def bh_fdr(pvalues: pd.Series) -> pd.Series: ...
@overload
def bh_fdr(pvalues: np.ndarray) -> np.ndarray: ...
def bh_fdr(pvalues: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Benjamini-Hochberg adjusted p-values; a missing p-value stays missing and is not counted among the tests.
    A Series gives a Series on the same index.

    scipy's `false_discovery_control` computes p x n / i as R's `p.adjust(method = "BH")` does, so the values are
    R's to the last bit (statsmodels' `fdr_bh` divides by i / n and differs in the last bit for about a third of
    the values; it also takes twice as long to import, which every job paid). scipy.stats is imported here, not
    with the module: the Snakefile's parse imports modules that import this one and needs no statistics."""
    from scipy.stats import false_discovery_control

    values = np.asarray(pvalues, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    known = ~np.isnan(values)
    if known.any():
        adjusted[known] = false_discovery_control(values[known], method="bh")
    return pd.Series(adjusted, index=pvalues.index) if isinstance(pvalues, pd.Series) else adjusted
