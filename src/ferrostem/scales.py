"""Expression-scale checks shared by harmonisation, differential expression and signature scoring.

A matrix on the wrong scale gives a plausible-looking wrong result (DESeq2 on log values, a log2 method on
TPM), so every stage checks the scale it is given and refuses a mismatch with a `ScaleError` that names the
sample and gene at fault. The linear-or-log decision is GEO2R's rule (NCBI GEO2R R script), used both to
decide whether an array needs log-transforming and to refuse linear values where log2 values are needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import ScaleError

Scale = Literal["log2", "linear", "any"]
LOG2_MAX = 30.0  # log2(TPM+1) tops out near 20; anything above 30 is linear data


def scale_quantiles(values: np.ndarray) -> np.ndarray:
    """Quantiles 0, 25, 50, 75, 99 and 100 % of the finite values (the ones GEO2R's rule reads)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise ScaleError("the expression matrix has no finite value")
    return np.quantile(finite, [0.0, 0.25, 0.5, 0.75, 0.99, 1.0])


def looks_linear_scale(values: np.ndarray) -> bool:
    """GEO2R's rule: linear if q99 > 100, or the range exceeds 50 with a positive q25."""
    q = scale_quantiles(values)
    return bool(q[4] > 100 or (q[5] - q[0] > 50 and q[1] > 0))


def check_counts(counts: np.ndarray, *, genes: Sequence[str], samples: Sequence[str], where: str) -> None:
    """DESeq2 needs raw, non-negative integer counts; refuse log-scale or normalised values."""
    values = np.asarray(counts)
    if values.size == 0:
        raise ScaleError(f"{where}: the count matrix is empty")
    # integer arrays (h5ad counts are int64) are finite whole numbers: only floats need those two passes, each of
    # which builds a samples x genes temporary (180 MB at TCGA size)
    floating = not np.issubdtype(values.dtype, np.integer)
    if floating and not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise ScaleError(f"{where}: non-finite count for sample {samples[i]}, gene {genes[j]}")
    if (values < 0).any():
        i, j = np.argwhere(values < 0)[0]
        raise ScaleError(
            f"{where}: negative value {values[i, j]} for sample {samples[i]}, gene {genes[j]}: "
            "these are not raw counts (log-ratios or centred data?); DESeq2 needs raw counts"
        )
    fractional = np.abs(values - np.round(values)) > 1e-6 if floating else None
    if fractional is not None and fractional.any():
        i, j = np.argwhere(fractional)[0]
        raise ScaleError(
            f"{where}: value {values[i, j]:.4g} for sample {samples[i]}, gene {genes[j]} is not an integer "
            "count; DESeq2 needs raw counts (log2 or normalised values belong to the limma method)"
        )
    if values.max() <= 40 and np.quantile(values, 0.999) <= 25:
        raise ScaleError(
            f"{where}: counts never exceed {values.max():.0f} (99.9th percentile "
            f"{np.quantile(values, 0.999):.0f}): these look like log2-scale values, not raw counts; "
            "DESeq2 needs raw counts"
        )


def check_log_scale(values: np.ndarray, *, where: str) -> None:
    """The linear model needs log-scale values; refuse raw counts or linear intensities."""
    array = np.asarray(values, dtype=float)
    if not np.isfinite(array).all():
        raise ScaleError(
            f"{where}: {int((~np.isfinite(array)).sum())} missing or infinite values; "
            "impute or drop those genes before the linear model"
        )
    if looks_linear_scale(array):
        integer = bool(np.all(np.abs(array - np.round(array)) < 1e-6))
        kind = "raw counts" if integer else "linear-scale intensities"
        raise ScaleError(
            f"{where}: values look like {kind} (99th percentile {np.quantile(array, 0.99):.4g}); the "
            "moderated linear model needs log2 values: use method deseq2 for counts, or log2-transform"
        )


def check_scale(expr: pd.DataFrame, scale: str, required: Scale, context: str) -> None:
    """Refuse a matrix whose declared or apparent scale does not fit `required`; name sample and gene."""
    if scale not in ("log2", "linear"):
        raise ScaleError(f"{context}: the expression scale must be 'log2' or 'linear', got {scale!r}")
    if required != "any" and scale != required:
        raise ScaleError(f"{context}: the method needs {required} expression but was given a {scale} matrix")
    values = expr.to_numpy(dtype=float, copy=False)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ScaleError(
            f"{context}: non-finite expression ({values[row, col]}) for sample {expr.index[row]} "
            f"gene {expr.columns[col]} ({int(bad.sum())} such values)"
        )
    if values.size == 0:
        return
    if scale == "log2" and values.max() > LOG2_MAX:
        row, col = np.unravel_index(int(values.argmax()), values.shape)
        raise ScaleError(
            f"{context}: matrix declared log2 but sample {expr.index[row]} gene {expr.columns[col]} "
            f"is {values.max():.4g} (> {LOG2_MAX:g}); it looks linear"
        )
    if scale == "linear" and values.min() < 0:
        row, col = np.unravel_index(int(values.argmin()), values.shape)
        raise ScaleError(
            f"{context}: matrix declared linear but sample {expr.index[row]} gene {expr.columns[col]} "
            f"is negative ({values.min():.4g}); it looks log-transformed"
        )


LOG2_RATIO = "log2 ratio"  # the detected scale of a two-colour array's log ratios (harmonise.detect_scale)


def holds_log_ratios(uns: Mapping[str, Any]) -> bool:
    """Whether a harmonised cohort's log2 layer holds log ratios to a reference channel (its `uns`).

    Here, not in harmonise, so that a job reading a harmonised cohort need not import the source adapters."""
    return str(uns.get("harmonisation", {}).get("detected_scale", "")) == LOG2_RATIO
