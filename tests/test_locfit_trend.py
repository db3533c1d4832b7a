"""DESeq2's local dispersion trend (locfit) against R: the fit itself, and DESeq2 runs that use it.

References from tests/data/locfit_trend/make_fixture.R (R 4.2, DESeq2 1.38.3, locfit 1.5-9.7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferrostem.de import Comparison, DESettings, prepare_design, run_deseq2
from ferrostem.errors import ConfigError
from ferrostem.locfit_trend import local_dispersion_fit, local_dispersion_trend, locfit_1d

DATA = Path(__file__).parent / "data" / "locfit_trend"
MIN_DISP = 1e-8
# Ours equals R to a few ulps (<= 2e-15 relative on every case here). locfit's Jacobi eigen-solver stops
# at off-diagonals of ~3e-8, so a one-ulp change of an input (a log computed by another libm, a TSV
# parsed without round-trip precision) can move a vertex fit by ~1e-10: the tolerance leaves room for that.
LOCFIT_RTOL = 1e-9


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, sep="\t", index_col=0, float_precision="round_trip")


CASES = pd.read_csv(DATA / "local_fit_cases.tsv", sep="\t", float_precision="round_trip")


@pytest.mark.parametrize("case", ["noisy", "sorted", "below_min", "small", "increasing"])
def test_local_dispersion_fit_equals_r(case):
    """localDispersionFit's trend at the fitted genes' means and on a grid reaching 2 log units past the
    fitted range (locfit's linear-plus-parametric extrapolation), for unsorted and sorted input (locfit's
    two neighbourhood searches), genes below 10 x minDisp (left out of the fit, still predicted), ties."""
    rows = CASES[CASES["case"] == case]
    data = rows[rows["role"] == "fit"]
    fit = local_dispersion_fit(data["mean"].to_numpy(), data["disp"].to_numpy(), MIN_DISP)
    assert fit is not None and len(fit.vertices) >= 3  # the tree was split, not just the two ends
    ours = local_dispersion_trend(fit, rows["mean"].to_numpy(), MIN_DISP)
    np.testing.assert_allclose(ours, rows["trend"].to_numpy(), rtol=LOCFIT_RTOL, atol=0)
    beyond = rows[(rows["role"] == "predict") & ~rows["mean"].between(data["mean"].min(), data["mean"].max())]
    assert len(beyond) >= 10


def test_local_dispersion_fit_without_usable_genes_is_min_disp():
    """R: all dispersions below 10 x minDisp give minDisp for every gene."""
    assert local_dispersion_fit(np.array([1.0, 5.0]), np.array([MIN_DISP, 5 * MIN_DISP]), MIN_DISP) is None
    np.testing.assert_array_equal(local_dispersion_trend(None, np.array([1.0, 9.0]), MIN_DISP), [MIN_DISP] * 2)


def test_locfit_reproduces_a_quadratic_everywhere():
    """A local quadratic fit of an exact quadratic is the quadratic, inside the range and beyond it (the
    parametric component carries the curvature past the end vertices; without it the extrapolation would be
    linear, off by ~1 at the grid's ends). To ~3e-8: locfit's Jacobi solver stops at off-diagonals of that size."""
    x = np.linspace(-2.0, 3.0, 40)[np.random.default_rng(1).permutation(40)]
    y = 0.5 - 0.3 * x + 0.2 * x**2
    fit = locfit_1d(x, y, np.exp(x))
    grid = np.linspace(-5.0, 6.0, 23)
    np.testing.assert_allclose(fit.predict(grid), 0.5 - 0.3 * grid + 0.2 * grid**2, rtol=0, atol=1e-6)


def test_locfit_rejects_degenerate_input():
    with pytest.raises(ValueError, match="all x values are equal"):
        locfit_1d(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="finite"):
        locfit_1d(np.array([1.0, np.nan, 2.0]), np.arange(3.0))


# ------------------------------------------------------------------------------------------------
# DESeq2 runs on 16 samples x 400 genes: "fallback" (R's parametric fit fails and DESeq() substitutes the
# local fit) and "local" (fitType = "local" asked for)


@pytest.fixture(scope="module", params=["fallback", "local"])
def local_run(request):
    cohort = request.param
    counts = pd.read_csv(DATA / f"counts_{cohort}.tsv.gz", sep="\t", index_col=0).T  # samples x genes
    samples = pd.read_csv(DATA / "samples.tsv", sep="\t", index_col=0)
    plan = prepare_design(samples, Comparison("t", "group", "test", "reference"))
    # the fallback cohort runs with the defaults: the fall-back to the local fit is the engine's own
    options = {"fit_type": "local"} if cohort == "local" else {}
    if cohort == "fallback":
        with pytest.warns(UserWarning, match="did not fit"):
            table, fitted, vst = run_deseq2(counts, plan, n_cpus=1, engine="vectorised")
    else:
        table, fitted, vst = run_deseq2(counts, plan, n_cpus=1, engine="vectorised", **options)
    unfiltered, _, _ = run_deseq2(
        counts, plan, n_cpus=1, engine="vectorised", vst=False, independent_filter=False, **options
    )
    r = _read(f"results_{cohort}.tsv.gz").loc[counts.columns]
    r_fit = _read(f"fit_{cohort}.tsv")["value"]
    r_vst = _read(f"vst_{cohort}.tsv.gz").T.loc[vst.index, vst.columns]
    return cohort, table.loc[counts.columns], unfiltered.loc[counts.columns], fitted, vst, r, r_fit, r_vst


def test_local_trend_map_dispersions_and_outliers_equal_r(local_run):
    cohort, _, _, fitted, _, r, r_fit, _ = local_run
    np.testing.assert_allclose(fitted["size_factors"], r_fit.filter(like="size_factor_").astype(float), rtol=1e-10)
    # the trend at every gene's mean (R's dispersionFunction(dds)(baseMean)); the gene-wise estimates
    # it is fitted to agree with R to ~1e-11, the trend follows them to ~1e-10
    np.testing.assert_allclose(fitted["trend_dispersions"], r["dispFit"], rtol=1e-8)
    assert r_fit["fitType"] == "local" and fitted["dispersion_trend"] == "local"
    # PyDESeq2's prior variance (as in test_de's r424 checks: 1e-5)
    np.testing.assert_allclose(fitted["prior_dispersion_variance"], float(r_fit["dispPriorVar"]), rtol=1e-5)
    np.testing.assert_allclose(fitted["dispersions"], r["dispersion"], rtol=1e-4)
    tested = r["baseMean"] > 0  # all-zero genes: R's flags are NA
    assert (fitted["dispersion_outlier"][tested].astype(bool) == r["dispOutlier"][tested].astype(bool)).all()
    replaced = fitted["refitted"][tested].astype(bool)
    assert replaced.sum() >= 3 and (replaced == r["replace"][tested].astype(bool)).all()


def test_local_trend_wald_results_and_vst_equal_r(local_run):
    """log2FC, p-values and BH padj (R's results(independentFiltering = FALSE)) and the VST, which for a
    local trend is DESeq2's numerical integral of the trend (fmm spline), against R."""
    cohort, table, unfiltered, _, vst, r, _, r_vst = local_run
    np.testing.assert_allclose(table["log2FC"], r["log2FoldChange"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table["pvalue"], r["pvalue"], rtol=1e-3)
    assert unfiltered["padj"].isna().tolist() == r["padjNoFilter"].isna().tolist()
    np.testing.assert_allclose(unfiltered["padj"].dropna(), r["padjNoFilter"].dropna(), rtol=1e-3)
    assert unfiltered["padj"].lt(0.05).tolist() == r["padjNoFilter"].lt(0.05).tolist()
    assert r["padjNoFilter"].lt(0.05).sum() >= 20
    np.testing.assert_allclose(vst.to_numpy(), r_vst.to_numpy(), atol=1e-8)
    # independent filtering with R's lowess (deseq2_filtering): the same genes kept and the same calls
    assert table["padj"].isna().tolist() == r["padj"].isna().tolist()
    np.testing.assert_allclose(table["padj"].dropna(), r["padj"].dropna(), rtol=1e-3)
    assert table["padj"].lt(0.05).tolist() == r["padj"].lt(0.05).tolist()


def test_fit_type_setting_is_checked():
    assert DESettings().fit_type == "parametric"
    assert DESettings.from_config({"fit_type": "local"}).fit_type == "local"
    with pytest.raises(ConfigError, match="de.fit_type"):
        DESettings(fit_type="loess")
    with pytest.raises(ConfigError, match="needs de.engine: vectorised"):
        DESettings(fit_type="local", engine="pydeseq2")


def test_fallback_is_recorded_in_the_de_summary_and_report_facts():
    """A DE job whose parametric fit fails says so: de_summary.json's dispersion_trend and the report's
    "dispersion trend" fact."""
    import anndata as ad

    from ferrostem.de import differential_expression
    from ferrostem.de_report import dispersion_trend_fact

    counts = pd.read_csv(DATA / "counts_fallback.tsv.gz", sep="\t", index_col=0).T
    samples = pd.read_csv(DATA / "samples.tsv", sep="\t", index_col=0)
    adata = ad.AnnData(
        X=counts.to_numpy(dtype=np.float32),
        obs=samples.loc[counts.index],
        var=pd.DataFrame(index=counts.columns),
        layers={"counts": counts.to_numpy()},
    )
    adata.uns["assay"] = "rnaseq"
    with pytest.warns(UserWarning, match="did not fit"):
        result = differential_expression(
            adata, Comparison("t", "group", "test", "reference"), DESettings(min_count=0), cohort="fallback"
        )
    summary = result.summary(0.05)
    assert (summary["fit_type"], summary["dispersion_trend"]) == ("parametric", "local")
    fact = dispersion_trend_fact(summary["dispersion_trend"], summary["fit_type"])
    assert fact == "local regression (locfit) (the parametric a0 + a1/mean fit failed: DESeq2's fall-back)"
    assert dispersion_trend_fact("parametric", "parametric") == "parametric a0 + a1/mean"
