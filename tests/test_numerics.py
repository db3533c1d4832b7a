"""The shared z-score and Benjamini-Hochberg adjustment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ferrostem.numerics import bh_fdr, standardise


def test_bh_matches_r_p_adjust_and_leaves_missing_p_values_out() -> None:
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.2), method = "BH") -> 0.04 0.05333333 0.05333333 0.2
    p = pd.Series([0.01, np.nan, 0.04, 0.03, 0.2], index=list("abcde"))
    adjusted = bh_fdr(p)
    assert adjusted.index.tolist() == list("abcde") and np.isnan(adjusted["b"])
    np.testing.assert_allclose(adjusted.drop("b").to_numpy(), [0.04, 0.16 / 3, 0.16 / 3, 0.2], rtol=1e-12)
    array = bh_fdr(p.to_numpy())
    assert isinstance(array, np.ndarray)
    np.testing.assert_array_equal(array, adjusted.to_numpy())
    assert np.isnan(bh_fdr(np.array([np.nan]))).all() and bh_fdr(np.array([])).size == 0


def test_standardise_uses_the_sample_sd_and_blanks_constant_columns() -> None:
    z = standardise(pd.DataFrame({"x": [1.0, 2.0, 3.0], "flat": [4.0, 4.0, 4.0]}))
    np.testing.assert_allclose(z["x"], [-1.0, 0.0, 1.0])
    assert z["flat"].isna().all()


def test_bh_equals_r_p_adjust_to_the_last_bit() -> None:
    # tests/data/bh/make_fixture.R: 400 p-values with ties and ones, and R's p.adjust(method = "BH") of them
    reference = pd.read_csv(
        Path(__file__).parent / "data" / "bh" / "bh_reference.tsv", sep="\t", float_precision="round_trip"
    )
    np.testing.assert_array_equal(bh_fdr(reference["p"].to_numpy()), reference["bh"].to_numpy())
