"""Differential expression: R DESeq2 reference, planted demo truth, an independent moderated t, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from ferrostem.de import (
    RESULT_COLUMNS,
    Comparison,
    DESettings,
    DesignError,
    ScaleError,
    check_counts,
    check_log_scale,
    differential_expression,
    prepare_design,
    run_deseq2,
    run_limma,
)

ALPHA = 0.05


# ------------------------------------------------------------------------------------------------
# PyDESeq2 path against R DESeq2 1.34 (../shared/reference/deseq2_reference, design ~condition)


@pytest.fixture(scope="module", params=["pydeseq2", "vectorised"])
def r_reference(shared_reference: Path, request):
    """Both engines (de.engine) are held to the same R tolerances."""
    folder = shared_reference / "deseq2_reference"
    counts = pd.read_csv(folder / "synthetic" / "test_counts.csv", index_col=0).T  # samples x genes
    metadata = pd.read_csv(folder / "synthetic" / "test_metadata.csv", index_col=0)
    plan = prepare_design(metadata, Comparison("B_vs_A", "condition", "B", "A"))
    table, fitted, vst = run_deseq2(counts, plan, n_cpus=1, engine=request.param)
    shrunk, _, _ = run_deseq2(counts, plan, n_cpus=1, lfc_shrink=True, vst=False, engine=request.param)
    return folder / "single_factor", counts, table, fitted, vst, shrunk


def _read_r(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)


@pytest.mark.shared
def test_size_factors_and_dispersions_match_r(r_reference):
    folder, counts, _, fitted, _, _ = r_reference
    r_size = _read_r(folder / "r_test_size_factors.csv")["x"].loc[counts.index]
    r_disp = _read_r(folder / "r_test_dispersions.csv")["x"].loc[counts.columns]
    np.testing.assert_allclose(fitted["size_factors"], r_size, rtol=1e-10)  # closed form: exact
    np.testing.assert_allclose(fitted["dispersions"], r_disp, rtol=2e-3)  # iterative optimiser: 0.065% seen


@pytest.mark.shared
def test_wald_results_match_r(r_reference):
    folder, _, table, _, _, _ = r_reference
    r = _read_r(folder / "r_test_res.csv").loc[table.index]
    np.testing.assert_allclose(table["baseMean"], r["baseMean"], rtol=1e-10)
    np.testing.assert_allclose(table["log2FC"], r["log2FoldChange"], rtol=1e-4)
    np.testing.assert_allclose(table["lfcSE"], r["lfcSE"], rtol=1e-3)
    np.testing.assert_allclose(table["stat"], r["stat"], rtol=1e-3)
    np.testing.assert_allclose(table["pvalue"], r["pvalue"], rtol=5e-3)
    np.testing.assert_allclose(table["padj"], r["padj"], rtol=2e-3)
    assert table["padj"].isna().equals(r["padj"].isna())


@pytest.mark.shared
def test_vst_and_lfc_shrinkage_match_r(r_reference):
    folder, _, _, _, vst, shrunk = r_reference
    r_vst = _read_r(folder / "r_vst_with_design.csv").T.loc[vst.index, vst.columns]  # blind=FALSE, parametric
    np.testing.assert_allclose(vst.to_numpy(), r_vst.to_numpy(), atol=1e-3)
    r_shrunk = _read_r(folder / "r_test_lfc_shrink_res.csv").loc[shrunk.index]  # lfcShrink(type="apeglm")
    np.testing.assert_allclose(shrunk["log2FC"], r_shrunk["log2FoldChange"], atol=2e-3, rtol=2e-2)
    np.testing.assert_allclose(shrunk["pvalue"], r_shrunk["pvalue"], rtol=5e-3)  # shrinkage leaves p-values alone


@pytest.mark.shared
def test_vectorised_engine_matches_r_reference_to_its_own_rules(shared_reference: Path):
    """The vectorised engine follows DESeq2's dispersion line search, MAP start, Wald ridge and minmu, so it
    agrees with R 1.34 about 1,000x more closely than PyDESeq2 does (dispersions 6.5e-4, p 2.4e-3 there)."""
    folder = shared_reference / "deseq2_reference"
    counts = pd.read_csv(folder / "synthetic" / "test_counts.csv", index_col=0).T
    metadata = pd.read_csv(folder / "synthetic" / "test_metadata.csv", index_col=0)
    plan = prepare_design(metadata, Comparison("B_vs_A", "condition", "B", "A"))
    table, fitted, vst = run_deseq2(counts, plan, n_cpus=1, engine="vectorised")
    single = folder / "single_factor"
    r = _read_r(single / "r_test_res.csv").loc[table.index]
    np.testing.assert_allclose(
        fitted["dispersions"], _read_r(single / "r_test_dispersions.csv")["x"].loc[counts.columns], rtol=1e-6
    )
    np.testing.assert_allclose(table["log2FC"], r["log2FoldChange"], rtol=1e-6)
    np.testing.assert_allclose(table["lfcSE"], r["lfcSE"], rtol=1e-6)
    np.testing.assert_allclose(table["pvalue"], r["pvalue"], rtol=1e-5)
    np.testing.assert_allclose(table["padj"], r["padj"], rtol=1e-5)
    r_vst = _read_r(single / "r_vst_with_design.csv").T.loc[vst.index, vst.columns]
    np.testing.assert_allclose(vst.to_numpy(), r_vst.to_numpy(), atol=1e-5)
    unfiltered, _, _ = run_deseq2(counts, plan, n_cpus=1, engine="vectorised", independent_filter=False, vst=False)
    r_unfiltered = _read_r(single / "r_test_res_no_independent_filtering.csv").loc[unfiltered.index]
    np.testing.assert_allclose(unfiltered["padj"], r_unfiltered["padj"], rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# vectorised engine against R DESeq2 1.38 on a real-sized design (tests/data/deseq2_424, make_reference.R)

R424 = Path(__file__).parent / "data" / "deseq2_424"


@pytest.fixture(scope="module", params=[("group", []), ("batch_group", ["batch"])], ids=["group", "batch_group"])
def r424(request):
    design, covariates = request.param
    counts = pd.read_csv(R424 / "counts.tsv.gz", sep="\t", index_col=0).T  # samples x genes
    samples = pd.read_csv(R424 / "samples.tsv", sep="\t", index_col=0)
    plan = prepare_design(samples, Comparison("t", "group", "test", "reference", covariates=covariates))
    table, fitted, _ = run_deseq2(counts, plan, n_cpus=2, engine="vectorised", vst=False)
    r = pd.read_csv(R424 / f"results_{design}.tsv.gz", sep="\t", index_col=0).loc[counts.columns]
    r_fit = pd.read_csv(R424 / f"fit_{design}.tsv", sep="\t", index_col=0)["value"]
    return counts, table.loc[counts.columns], fitted, r, r_fit


def test_r424_size_factors_and_dispersion_steps(r424):
    """Size factors, gene-wise estimates (line search, no-increase rule, grid), trend, prior variance, MAP,
    dispersion outliers (2 SD) and the Cook's replacement set, each against R."""
    counts, _, fitted, r, r_fit = r424
    r_size = r_fit[[f"size_factor_{s}" for s in counts.index]].to_numpy()
    np.testing.assert_allclose(fitted["size_factors"], r_size, rtol=1e-10)
    # a high-count gene whose line search gains < |lp|/1e6 keeps R's start (PyDESeq2: 8% off on G0171)
    np.testing.assert_allclose(fitted["genewise_dispersions"], r["dispGeneEst"], rtol=1e-6)
    np.testing.assert_allclose(fitted["trend_coefficients"], r_fit[["asymptDisp", "extraPois"]], rtol=1e-6)
    np.testing.assert_allclose(fitted["trend_dispersions"], r["dispFit"], rtol=1e-6)
    np.testing.assert_allclose(fitted["prior_dispersion_variance"], r_fit["dispPriorVar"], rtol=1e-5)
    np.testing.assert_allclose(fitted["dispersions"], r["dispersion"], rtol=1e-4)
    assert fitted["dispersion_outlier"].astype(bool).tolist() == r["dispOutlier"].astype(bool).tolist()
    replaced = fitted["refitted"].astype(bool)
    assert replaced.sum() >= 20 and replaced.tolist() == r["replace"].astype(bool).tolist()
    # independent filtering's chosen baseMean (R's metadata(res)$filterThreshold)
    np.testing.assert_allclose(fitted["filter_threshold"], r_fit["filterThreshold"], rtol=1e-10)


def test_r424_wald_results_and_calls(r424):
    _, table, _, r, _ = r424
    np.testing.assert_allclose(table["baseMean"], r["baseMean"], rtol=1e-10)
    np.testing.assert_allclose(table["log2FC"], r["log2FoldChange"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table["lfcSE"], r["lfcSE"], rtol=1e-4)
    np.testing.assert_allclose(table["stat"], r["stat"], rtol=1e-4, atol=1e-6)
    positive = r["pvalue"] > 1e-300
    assert_tail_probabilities_close(table["pvalue"][positive], r["pvalue"][positive])
    assert table["padj"].isna().tolist() == r["padj"].isna().tolist()
    assert_tail_probabilities_close(table["padj"].dropna(), r["padj"].dropna())
    assert table["padj"].lt(ALPHA).tolist() == r["padj"].lt(ALPHA).tolist()


def assert_tail_probabilities_close(ours, theirs, *, rtol=1e-3, tail=1e-10, log_rtol=1e-5) -> None:
    """p-values to `rtol`, and those below `tail` on the log scale to `log_rtol`. Deep in the tail a p-value's
    relative error is |z| times the Wald statistic's absolute error: at z = 33 (p = 5e-239) a statistic equal to
    R's to 2.4e-6 relative moves p by 0.27 % (seen on an AMD EPYC host, where the BLAS rounds otherwise)."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    # below the smallest double both sides give 0 (R's pnorm and padj of it): the same genes, compared exactly
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    deep = (theirs < tail) & (theirs > 0)
    shallow = theirs >= tail
    np.testing.assert_allclose(ours[shallow], theirs[shallow], rtol=rtol)
    np.testing.assert_allclose(np.log(ours[deep]), np.log(theirs[deep]), rtol=log_rtol)


def test_batched_glm_and_wald_equal_pydeseq2_per_gene():
    """batched_irls / batched_wald_test solve the same per-gene problems as PyDESeq2's irls_solver/wald_test
    (PyDESeq2's ridge and unbounded mean given to the per-gene code, so only the batching differs)."""
    from pydeseq2 import utils

    from ferrostem.deseq2_batched import LOG2_TO_LN_RIDGE, batched_irls, batched_wald_test

    rng = np.random.default_rng(3)
    n = 24
    design = np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2), rng.normal(size=n)])
    size_factors = rng.uniform(0.6, 1.6, size=n)
    means = rng.lognormal(3, 1.5, size=60)
    counts = rng.negative_binomial(4, 4 / (4 + np.outer(size_factors, means))).astype(float)
    disp = rng.uniform(0.05, 0.5, size=60)
    beta, mu, hat, converged = batched_irls(counts, size_factors, design, disp, 0.5, 1e-8)
    assert converged.all()
    for j in range(0, 60, 7):
        expected = utils.irls_solver(counts[:, j], size_factors, design, disp[j], 0.5, 1e-8)
        np.testing.assert_allclose(beta[j], expected[0], rtol=1e-5, atol=1e-6)
    ridge = np.diag(np.repeat(1e-6, 3))
    contrast = np.array([0.0, 1.0, 0.0])
    mu_wald = np.maximum(mu, 0.5)
    pvalue, stat, se = batched_wald_test(design, disp, beta, mu_wald, ridge, contrast, 0.0)
    for j in range(0, 60, 7):
        p_j, s_j, se_j = utils.wald_test(
            design, disp[j], beta[j], mu_wald[:, j], ridge * LOG2_TO_LN_RIDGE, contrast, 0.0, None
        )
        np.testing.assert_allclose([pvalue[j], stat[j], se[j]], [p_j, s_j, se_j], rtol=1e-9)


def test_engines_agree_on_a_paired_design(demo_rnaseq):
    """A many-column design (~ patient + tissue, the paired comparison) through the batched p x p code: the
    engines differ only where PyDESeq2 departs from R's rules (dispersion stops, Wald minmu), by little."""
    adata = demo_rnaseq[:, :1500].copy()
    comparison = Comparison("p", "tissue", "tumor", "normal", paired=True)
    tables = {
        engine: differential_expression(adata, comparison, DESettings(engine=engine), cohort="demo").table
        for engine in ("vectorised", "pydeseq2")
    }
    vectorised, pydeseq2 = tables["vectorised"], tables["pydeseq2"]
    assert len(vectorised) > 500 and vectorised["padj"].lt(ALPHA).sum() > 20
    assert np.corrcoef(vectorised["log2FC"], pydeseq2["log2FC"])[0, 1] > 0.99999
    # PyDESeq2's dispersion stop departs from R's on a few genes (2 of 1,308 on this demo, by up to 0.8 in stat):
    # every other gene agrees closely
    close = np.isclose(vectorised["stat"], pydeseq2["stat"], rtol=0.02, atol=0.1)
    assert close.mean() >= 0.995, vectorised.loc[~close, ["symbol", "stat"]].join(pydeseq2["stat"], rsuffix="_pydeseq2")
    calls = vectorised["padj"].lt(ALPHA), pydeseq2["padj"].lt(ALPHA)
    assert (calls[0] & calls[1]).sum() / (calls[0] | calls[1]).sum() >= 0.95  # one boundary gene seen


def test_unknown_engine_is_refused():
    from ferrostem.errors import ConfigError

    with pytest.raises(ConfigError, match=r"de.engine: 'fast' is not one of \['vectorised', 'pydeseq2'\]"):
        DESettings.from_config({"engine": "fast"})


# ------------------------------------------------------------------------------------------------
# planted truth of the demo (the workflow's own outputs; truth from the same seeded generator)


def _truth(demo_dir: Path) -> pd.DataFrame:
    return pd.read_csv(demo_dir / "truth" / "de_truth.tsv", sep="\t").set_index("symbol")


def _workflow_de(workflow_run: Path, cohort: str) -> pd.DataFrame:
    path = workflow_run / "results" / cohort / "de" / "tumour_vs_normal" / "de.tsv"
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""]).set_index("symbol", drop=False)


@pytest.mark.e2e
@pytest.mark.parametrize("cohort", ["demo_tcga", "demo_geo"])
def test_planted_fold_changes_are_recovered(workflow_run, demo_dir, cohort):
    """FDP at padj < 0.05 and power for planted |log2FC| >= 1.

    The demo's latent programmes are drawn for tumour and normal samples alike, so genes with a planted
    fold change of 0 are the true nulls, except the ferroptosis-subtype regulators (tumours carry their subtype
    shifts, normals none). BH bounds the expected FDP by 5%; one seeded realisation is held to 5% plus two
    binomial standard errors of a proportion of its discoveries (4.6% for DESeq2 on the demo before cell fractions
    were planted, 6.0% after: the counts are another draw), and the null p-values, which BH's guarantee rests on,
    must be calibrated to within 1 and 0.4 percentage points.
    """
    from ferrostem.demo import FERROPTOSIS_SUBTYPE_GENES

    table = _workflow_de(workflow_run, cohort)
    truth = _truth(demo_dir)
    planted = truth["planted_log2fc"].reindex(table.index).fillna(0.0)
    subtype_genes = table.index.isin([g for genes in FERROPTOSIS_SUBTYPE_GENES.values() for g in genes])
    called = table["padj"].lt(ALPHA)
    discoveries = int(called.sum())
    false = int((called & planted.eq(0) & ~subtype_genes).sum())
    fdp = false / discoveries
    bound = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / discoveries)
    assert fdp <= bound, f"{cohort}: FDP {fdp:.3f} ({false}/{discoveries}) above {bound:.3f}"
    strong = truth.index[truth["planted_log2fc"].abs() >= 1]
    found = called.reindex(strong, fill_value=False).mean()
    assert found >= 0.80, f"{cohort}: only {found:.1%} of {len(strong)} planted |log2FC| >= 1 genes found"
    right_sign = np.sign(table.loc[called & planted.ne(0), "log2FC"]) == np.sign(planted[called & planted.ne(0)])
    assert right_sign.mean() > 0.99
    null_p = table.loc[planted.eq(0) & ~subtype_genes, "pvalue"].dropna()
    assert abs((null_p < 0.05).mean() - 0.05) < 0.01 and abs((null_p < 0.01).mean() - 0.01) < 0.004


@pytest.mark.e2e
@pytest.mark.parametrize("cohort", ["demo_tcga", "demo_geo"])
def test_planted_ferroptosis_resistance_programme_direction(workflow_run, demo_dir, cohort):
    """GSEA recovers the direction of the programme's planted tumour-vs-normal changes.

    The programme (truth.json programmes.ferroptosis_resistance) is driven by a latent factor that tumour and
    normal samples share, so only members that also carry a planted tumour-vs-normal change are DE, and their
    planted directions are mixed in this demo: GPX4 +1.2, SLC7A11 +2.0, AIFM2 +1.0, SLC3A2 +1.1, NFE2L2 +0.6,
    FTH1 +0.8, ACSL4 +1.3 up; HMOX1 -1.2, NCOA4 -1.0 and, from the random draws, NQO1 -1.0, TXNRD1 -2.0 down.
    The whole programme is therefore not expected to be enriched (NES ~1, FDR > 0.5 seen). The test splits
    the changed members by planted sign (read from the truth files) and requires each part to be enriched
    in its planted direction with a nominal permutation p < 0.05 (one pre-specified hypothesis per part;
    the 4-gene down part reaches |ES| 0.97 but its FDR among 21 sets is ~0.07-0.24, too few sets for FDR).
    """
    from ferrostem.enrichment import ranking_from_de, run_prerank
    from ferrostem.genesets import GeneSet

    truth = json.loads((demo_dir / "truth" / "truth.json").read_text())
    members = list(truth["programmes"]["ferroptosis_resistance"])
    planted = _truth(demo_dir)["planted_log2fc"].reindex(members).fillna(0.0)
    parts = {
        "PROGRAMME_PLANTED_UP": list(planted.index[planted > 0]),
        "PROGRAMME_PLANTED_DOWN": list(planted.index[planted < 0]),
    }
    table = _workflow_de(workflow_run, cohort)
    ranking = ranking_from_de(table)
    rng = np.random.default_rng(1)
    for name, genes in parts.items():
        assert len(genes) >= 3, (name, genes)
        sets = {name: GeneSet(name, tuple(genes), collection="truth")}
        for i in range(20):  # background sets so the NES normalisation and FDR have something to compare with
            random_genes = tuple(rng.choice(ranking.index, size=len(genes), replace=False))
            sets[f"RANDOM_{i}"] = GeneSet(f"RANDOM_{i}", random_genes, collection="truth")
        gsea, _ = run_prerank(ranking, sets, permutations=1000, seed=7, min_size=3, max_size=500)
        row = gsea.set_index("set").loc[name]
        expected = 1 if name.endswith("_UP") else -1
        assert np.sign(row["NES"]) == expected and row["pvalue"] < 0.05, (cohort, name, row.to_dict())

    shipped = pd.read_csv(workflow_run / "results" / cohort / "enrichment" / "tumour_vs_normal" / "gsea.tsv", sep="\t")
    suppressors = shipped.set_index("set").loc["FERROPTOSIS_CORE_SUPPRESSORS"]
    assert suppressors["NES"] > 0 and suppressors["fdr"] < 0.05


# ------------------------------------------------------------------------------------------------
# moderated t against an independent implementation of Smyth (2004)


def _smyth_moderated_t(
    values: np.ndarray, design: np.ndarray, coef: int
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Smyth 2004 (Stat Appl Genet Mol Biol 3:3), written from the paper with numpy/scipy.

    Per gene OLS: beta, s^2 with d = n - p residual df, v = [(X'X)^-1]_jj. Hyperparameters by the method of
    moments on e_g = log s_g^2 - digamma(d/2) + log(d/2) (section 6.2): trigamma(d0/2) = mean((e - ebar)^2)
    * G/(G-1) - trigamma(d/2); s0^2 = exp(ebar + digamma(d0/2) - log(d0/2)). Posterior
    s~^2 = (d0 s0^2 + d s^2)/(d0 + d); t~ = beta / (s~ sqrt(v)) on d0 + d df.
    """
    n, p = design.shape
    xtx_inv = np.linalg.inv(design.T @ design)
    beta = values @ design @ xtx_inv  # genes x p
    residuals = values - beta @ design.T
    d = n - p
    s2 = (residuals**2).sum(axis=1) / d
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    genes = len(e)
    target = np.mean((e - e.mean()) ** 2) * genes / (genes - 1) - special.polygamma(1, d / 2)
    d0 = 2 * optimize.brentq(lambda x: special.polygamma(1, x) - target, 1e-8, 1e8)
    s0_sq = np.exp(e.mean() + special.digamma(d0 / 2) - np.log(d0 / 2))
    post = (d0 * s0_sq + d * s2) / (d0 + d)
    t = beta[:, coef] / np.sqrt(post * xtx_inv[coef, coef])
    return t, 2 * stats.t.sf(np.abs(t), d0 + d), d0, s0_sq


def test_moderated_t_matches_smyth_2004():
    rng = np.random.default_rng(11)
    genes, per_group = 400, 5
    d0_true, s0_true = 6.0, 0.2
    sigma2 = d0_true * s0_true / rng.chisquare(d0_true, size=genes)  # scaled inverse chi-square variances
    group = np.repeat([0, 1], per_group)
    effect = np.where(np.arange(genes) < 40, 1.5, 0.0)
    values = (
        7 + effect[:, None] * group[None, :] + rng.standard_normal((genes, 2 * per_group)) * np.sqrt(sigma2)[:, None]
    )
    samples = [f"s{i}" for i in range(2 * per_group)]
    obs = pd.DataFrame({"condition": np.where(group == 1, "b", "a")}, index=samples)
    plan = prepare_design(obs, Comparison("b_vs_a", "condition", "b", "a"))
    frame = pd.DataFrame(values.T, index=samples, columns=[f"g{i}" for i in range(genes)])
    table, details = run_limma(frame, plan)
    t_ref, p_ref, d0, s0_sq = _smyth_moderated_t(values, plan.matrix.to_numpy(), coef=1)
    np.testing.assert_allclose(details["df_prior"], d0, rtol=1e-6)
    np.testing.assert_allclose(details["s2_prior"], s0_sq, rtol=1e-6)
    np.testing.assert_allclose(table["stat"], t_ref, rtol=1e-6)
    np.testing.assert_allclose(table["pvalue"], p_ref, rtol=1e-6)
    np.testing.assert_allclose(table["log2FC"] / table["lfcSE"], table["stat"], rtol=1e-10)


# ------------------------------------------------------------------------------------------------
# design checks and bad input


def _obs(n_test: int, n_ref: int, **columns) -> pd.DataFrame:
    index = [f"S{i}" for i in range(n_test + n_ref)]
    obs = pd.DataFrame({"tissue": ["tumor"] * n_test + ["normal"] * n_ref}, index=index)
    for name, values in columns.items():
        obs[name] = values
    return obs


def test_one_sample_group_is_refused():
    with pytest.raises(DesignError, match=r"tissue='normal' has 1 usable sample\(s\) \(S5\)"):
        prepare_design(_obs(5, 1), Comparison("t", "tissue", "tumor", "normal"), cohort="x")


def test_confounded_covariate_is_named():
    obs = _obs(4, 4, batch=["b1"] * 4 + ["b2"] * 4, age=np.arange(8.0))
    with pytest.raises(DesignError, match=r"covariate\(s\) \['batch'\] perfectly confounded with 'tissue'"):
        prepare_design(obs, Comparison("t", "tissue", "tumor", "normal", covariates=["age", "batch"]))
    plan = prepare_design(
        obs.assign(batch=["b1", "b2"] * 4), Comparison("t", "tissue", "tumor", "normal", covariates=["age", "batch"])
    )
    assert plan.matrix.shape == (8, 4) and plan.matrix.columns[-1] == plan.group_coefficient


def test_unknown_level_column_and_constant_covariate_are_refused():
    obs = _obs(3, 3, sex=["male"] * 6)
    with pytest.raises(DesignError, match=r"reference level 'healthy' does not occur in column 'tissue'"):
        prepare_design(obs, Comparison("t", "tissue", "tumor", "healthy"))
    with pytest.raises(DesignError, match=r"column\(s\) \['stage'\] are not sample annotations"):
        prepare_design(obs, Comparison("t", "tissue", "tumor", "normal", covariates=["stage"]))
    with pytest.raises(DesignError, match="covariate 'sex' has a single value"):
        prepare_design(obs, Comparison("t", "tissue", "tumor", "normal", covariates=["sex"]))


def test_paired_design_keeps_complete_pairs(demo_rnaseq):
    plan = prepare_design(demo_rnaseq.obs, Comparison("p", "tissue", "tumor", "normal", paired=True))
    normals = int((demo_rnaseq.obs["tissue"] == "normal").sum())
    assert plan.n_test == plan.n_reference == normals
    assert plan.matrix.shape[1] == normals + 1  # intercept, normals-1 patient effects, group
    assert any("without a partner" in note for note in plan.notes)


def test_wrong_scale_is_refused(demo_rnaseq, demo_array):
    comparison = Comparison("t", "tissue", "tumor", "normal")
    with pytest.raises(ScaleError, match="method deseq2 needs raw counts"):
        differential_expression(
            demo_array, Comparison("t", "tissue", "tumor", "normal", method="deseq2"), DESettings(), cohort="demo_geo"
        )
    log_values = np.round(np.asarray(demo_rnaseq.layers["log2"][:10, :50]))
    with pytest.raises(ScaleError, match="look like log2-scale values"):
        check_counts(
            log_values, genes=list(demo_rnaseq.var_names[:50]), samples=list(demo_rnaseq.obs_names[:10]), where="test"
        )
    with pytest.raises(ScaleError, match="is not an integer count"):
        check_counts(
            np.asarray(demo_rnaseq.layers["log2"][:10, :50]),
            genes=list(demo_rnaseq.var_names[:50]),
            samples=list(demo_rnaseq.obs_names[:10]),
            where="test",
        )
    genes, samples = list(demo_rnaseq.var_names[:50]), list(demo_rnaseq.obs_names[:10])
    with pytest.raises(ScaleError, match="look like log2-scale values"):  # integer dtype: the same checks
        check_counts(log_values.astype(np.int64), genes=genes, samples=samples, where="test")
    negative = np.asarray(demo_rnaseq.layers["counts"][:10, :50]).astype(np.int64)
    negative[3, 7] = -2
    with pytest.raises(ScaleError, match=f"negative value -2 for sample {samples[3]}, gene {genes[7]}"):
        check_counts(negative, genes=genes, samples=samples, where="test")
    counts_as_log = ad.AnnData(
        X=np.asarray(demo_rnaseq.layers["counts"], dtype=np.float32),
        obs=demo_rnaseq.obs,
        var=demo_rnaseq.var,
        layers={"log2": np.asarray(demo_rnaseq.layers["counts"], dtype=float)},
    )
    counts_as_log.uns["assay"] = "microarray"
    with pytest.raises(ScaleError, match="look like raw counts"):
        differential_expression(counts_as_log, comparison, DESettings(), cohort="mislabelled")
    check_log_scale(np.asarray(demo_array.layers["log2"]), where="demo_geo")  # real log2 data pass


# ------------------------------------------------------------------------------------------------
# workflow outputs


@pytest.mark.e2e
@pytest.mark.parametrize("cohort,method", [("demo_tcga", "deseq2"), ("demo_geo", "limma")])
def test_workflow_de_outputs(workflow_run, cohort, method):
    base = workflow_run / "results" / cohort
    table = _workflow_de(workflow_run, cohort)
    assert list(table.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    summary = json.loads((base / "de" / "tumour_vs_normal" / "de_summary.json").read_text())
    assert summary["method"] == method and summary["n_reference"] == 20
    section = json.loads((base / "sections" / "de_tumour_vs_normal.json").read_text())
    assert len(section["context"]["figures"]) == 5  # volcano, MA, PCA, top-gene and core-regulator heatmaps
    html = (base / "report.html").read_text()
    assert "Differential expression: tumour_vs_normal" in html and "Gene-set enrichment: tumour_vs_normal" in html


def test_vectorised_initial_means_equal_pydeseq2_per_gene_fits():
    """linear_model_inference().lin_reg_mu is PyDESeq2's per-gene fit_lin_mu, done for all genes at once."""
    from pydeseq2.default_inference import DefaultInference

    from ferrostem.de import linear_model_inference

    rng = np.random.default_rng(5)
    counts = rng.negative_binomial(5, 0.05, size=(30, 200)).astype(float)
    counts[:, :3] = 0  # genes whose means are clipped at min_mu
    size_factors = rng.uniform(0.5, 2.0, size=30)
    design = np.column_stack([np.ones(30), np.repeat([0.0, 1.0], 15), rng.normal(size=30)])
    expected = DefaultInference(n_cpus=1).lin_reg_mu(counts, size_factors, design, 0.5)
    observed = linear_model_inference(1).lin_reg_mu(counts, size_factors, design, 0.5)
    np.testing.assert_allclose(observed, expected, rtol=1e-9, atol=1e-9)


def test_gene_block_cooks_vst_and_glm_equal_whole_matrix_results(monkeypatch):
    """Cook's distances and the parametric VST computed in gene blocks (to bound memory at TCGA-BRCA size)
    equal PyDESeq2's whole-matrix calculate_cooks / vst_transform exactly; the GLM fit in several blocks
    equals the one-block fit up to rounding (the matrix products' summation order follows the block's
    memory layout). Several blocks and threads are forced with a tiny block size."""
    from pydeseq2.dds import DeseqDataSet

    from ferrostem import deseq2_batched
    from ferrostem.deseq2_batched import BatchedDeseqDataSet, BatchedInference, batched_irls, parametric_vst

    rng = np.random.default_rng(11)
    n, genes = 40, 300
    size_factors = rng.uniform(0.6, 1.6, size=n)
    means = rng.lognormal(3, 1.5, size=genes)
    counts = rng.negative_binomial(4, 4 / (4 + np.outer(size_factors, means)))
    counts[3, :20] *= 30  # single-sample outliers, so that some Cook's distances are large
    metadata = pd.DataFrame({"condition": np.repeat(["A", "B"], n // 2)}, index=[f"s{i}" for i in range(n)])
    frame = pd.DataFrame(counts, index=metadata.index, columns=[f"g{j}" for j in range(genes)])
    dds = BatchedDeseqDataSet(
        counts=frame,
        metadata=metadata,
        design="~condition",
        refit_cooks=False,
        inference=BatchedInference(n_cpus=2),
        quiet=True,
    )
    one_block = deseq2_batched.BLOCK_CELLS
    dds.fit_size_factors()
    dds.fit_genewise_dispersions()
    dds.fit_dispersion_trend()
    dds.fit_dispersion_prior()
    dds.fit_MAP_dispersions()
    dds.fit_LFC()
    design = dds.obsm["design_matrix"].to_numpy()
    disp = dds.var["dispersions"].to_numpy()
    whole = batched_irls(counts, size_factors, design, disp, 0.5, 1e-8)
    monkeypatch.setattr(deseq2_batched, "BLOCK_CELLS", n * 7)  # 64-gene minimum: 5 blocks of 300 genes
    assert len(deseq2_batched._gene_blocks(n, genes, 2)) == 5 and one_block >= n * genes
    blocked = batched_irls(counts, size_factors, design, disp, 0.5, 1e-8, n_cpus=2)
    for expected, observed in zip(whole, blocked):
        np.testing.assert_allclose(observed, expected, rtol=1e-12, atol=1e-14)
    dds.calculate_cooks()
    observed_cooks = dds.layers["cooks"].copy()
    DeseqDataSet.calculate_cooks(dds)
    assert (observed_cooks > 5).any()
    np.testing.assert_array_equal(observed_cooks, dds.layers["cooks"])
    dds.vst_fit_type = "parametric"
    dds.uns["vst_trend_coeffs"] = dds.uns["trend_coeffs"]
    a0, a1 = dds.uns["trend_coeffs"]
    np.testing.assert_array_equal(parametric_vst(dds.layers["normed_counts"], a0, a1), dds.vst_transform())


def test_dispersion_posterior_in_chunks_equals_the_whole_block_formula(monkeypatch):
    """The line search's log posterior and its derivative, evaluated in cache-sized gene chunks with lgamma /
    digamma once per distinct count, are the whole-block samples x genes expressions bit for bit (the same
    values summed in the same order), on all genes, on a scattered subset (the active genes of a step), with
    zero counts, a MAP prior and counts that are not integers (the argsort path)."""
    from scipy import special

    from ferrostem import deseq2_batched
    from ferrostem.deseq2_batched import _outer_columns, _Posterior, _weighted_gram

    def whole_block(y, mu, design, outer, log_alpha, prior_mean, prior_var):
        """The previous implementation: every term on samples x genes arrays gathered as a[:, genes]."""
        p = design.shape[1]
        alpha = np.exp(log_alpha)
        r = 1.0 / alpha
        mu_alpha = mu * alpha
        log_term = np.log1p(mu_alpha)
        ll = (
            special.gammaln(y + r).sum(axis=0)
            - len(y) * special.gammaln(r)
            - (y * log_term).sum(axis=0)
            + np.log(alpha) * y.sum(axis=0)
            - r * log_term.sum(axis=0)
        )
        value = ll - 0.5 * np.linalg.slogdet(_weighted_gram(mu / (1.0 + mu_alpha), outer, p))[1]
        inverse_one_plus = 1.0 / (1.0 + mu_alpha)
        total = (
            len(y) * special.digamma(r)
            + np.log1p(mu_alpha).sum(axis=0)
            - len(y)
            + inverse_one_plus.sum(axis=0)
            - special.digamma(y + r).sum(axis=0)
            + alpha * (y * inverse_one_plus).sum(axis=0)
        )
        w = mu * inverse_one_plus
        gram, d_gram = _weighted_gram(w, outer, p), _weighted_gram(-(w * w), outer, p)
        derivative = (r * r * total - 0.5 * np.einsum("gij,gji->g", np.linalg.inv(gram), d_gram)) * alpha
        if prior_mean is not None:
            value = value - 0.5 * (log_alpha - prior_mean) ** 2 / prior_var
            derivative = derivative - (log_alpha - prior_mean) / prior_var
        return value, derivative

    rng = np.random.default_rng(3)
    n, genes = 60, 400
    design = np.column_stack([np.ones(n), np.repeat([0.0, 1.0], n // 2), rng.normal(size=n)])
    outer = _outer_columns(design)
    mu = np.maximum(rng.lognormal(3, 2, size=genes) * rng.uniform(0.5, 2, size=(n, 1)), 0.5)
    counts = rng.negative_binomial(3, 3 / (3 + mu)).astype(float)
    counts[:, :5] = 0
    counts[: n // 2, 5:10] = 0
    log_alpha = rng.normal(-2, 1.5, size=genes)
    prior_mean = rng.normal(-2, 0.5, size=genes)
    monkeypatch.setattr(deseq2_batched, "CHUNK_CELLS", n * 37)  # 11 chunks of 37 genes
    subset = np.sort(rng.choice(genes, 150, replace=False))
    for y in (counts, counts + 0.5):
        for prior in (None, prior_mean):
            post = _Posterior(y, mu, design, outer, prior, None if prior is None else 0.8)
            assert post.distinct.values.size < y.size
            for genes_evaluated in (np.arange(genes), subset):
                expected = whole_block(
                    y[:, genes_evaluated],
                    mu[:, genes_evaluated],
                    design,
                    outer,
                    log_alpha[genes_evaluated],
                    None if prior is None else prior[genes_evaluated],
                    0.8,
                )
                np.testing.assert_array_equal(post.value(log_alpha[genes_evaluated], genes_evaluated), expected[0])
                np.testing.assert_array_equal(post.derivative(log_alpha[genes_evaluated], genes_evaluated), expected[1])


def test_the_dataset_reads_the_callers_counts_only_where_they_are_its_copy():
    from pydeseq2.dds import DeseqDataSet

    from ferrostem.de import _share_counts

    rng = np.random.default_rng(5)
    samples, genes = [f"S{i}" for i in range(8)], [f"g{j}" for j in range(30)]
    metadata = pd.DataFrame({"condition": ["a", "b"] * 4}, index=samples)

    def dataset(frame):
        return DeseqDataSet(counts=frame, metadata=metadata, design="~condition", quiet=True)

    values = rng.poisson(20, (8, 30)).astype(np.int64)
    keep = np.ones(30, dtype=bool)
    # as differential_expression builds it (genes selected by a mask): int64 in the copy's layout, shared
    frame = pd.DataFrame(values[:, keep], index=samples, columns=genes)
    dds = dataset(frame)
    assert _share_counts(dds, frame)
    assert np.shares_memory(dds.X, frame.to_numpy()) and not dds.X.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        dds.X[0, 0] = 0  # a write cannot reach the caller's counts
    np.testing.assert_array_equal(dds.X, values)
    # another memory layout than DeseqDataSet's copy (a C-ordered array), or another dtype: the copy stays
    for other in (pd.DataFrame(np.ascontiguousarray(values), index=samples, columns=genes), frame.astype(float)):
        copy = dataset(other)
        assert not _share_counts(copy, other)
        assert copy.X.flags.writeable and not np.shares_memory(copy.X, other.to_numpy())


def test_whole_counts_stored_as_floats_are_rounded_not_truncated():
    # check_counts lets counts 1e-6 off a whole number through; DESeq2 gets the nearest integers (a cast would
    # truncate 29.99999999 to 29, and PyDESeq2's own check would refuse it)
    rng = np.random.default_rng(1)
    obs = pd.DataFrame({"tissue": ["tumor", "normal"] * 6}, index=[f"S{i}" for i in range(12)])
    plan = prepare_design(
        obs, Comparison(name="t", column="tissue", test="tumor", reference="normal"), min_group_size=3, cohort="c"
    )
    counts = pd.DataFrame(rng.poisson(30, (12, 200)), index=obs.index, columns=[f"g{j}" for j in range(200)])
    exact, _, _ = run_deseq2(counts, plan, vst=False)
    near, _, _ = run_deseq2(counts.astype(float) - 1e-8, plan, vst=False)
    pd.testing.assert_frame_equal(near, exact)
