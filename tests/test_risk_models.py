"""LASSO-Cox risk score (trained on demo_tcga, validated on demo_geo), genes of interest, diagnostic panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferrostem import risk_models as md
from ferrostem import survival as sv
from ferrostem.demo import FERROPTOSIS_DRIVERS_DOWN, FERROPTOSIS_RESISTANCE, STEMNESS, TUMOR_VS_NORMAL
from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.signatures import DEFAULT_CATALOGUE as CATALOGUE
from ferrostem.signatures import load_catalogue

NULL_GENES = ["ACTB", "GAPDH", "TBP", "PGK1", "PPIA", "RPLP0", "B2M", "HPRT1", "YWHAZ", "SDHA"]


def _universe(adata) -> list[str]:
    prognostic = [*FERROPTOSIS_RESISTANCE, *FERROPTOSIS_DRIVERS_DOWN, *STEMNESS]
    return [
        g
        for g in [*prognostic, *NULL_GENES, "G6PD", "CISD1", "SLC1A5", "ACACA", "NFS1", "TFRC"]
        if g in adata.var_names
    ]


@pytest.fixture(scope="module")
def lasso_model(demo_rnaseq):
    tumours = demo_rnaseq[demo_rnaseq.obs["tissue"] == "tumor"]
    surv, _ = sv.endpoint_frame(tumours.obs, "OS")
    universe = _universe(demo_rnaseq)
    expression = md.log2_expression(tumours, universe).loc[surv.index]
    return md.lasso_cox(expression, surv["time"].to_numpy(), surv["event"].to_numpy(), universe=universe, seed=1)


def test_lasso_selects_planted_prognostic_genes(lasso_model):
    assert len(lasso_model.weights) >= 2
    planted = set(FERROPTOSIS_RESISTANCE) | set(FERROPTOSIS_DRIVERS_DOWN) | set(STEMNESS)
    weights = lasso_model.weights
    share = weights[weights.index.isin(planted)].abs().sum() / weights.abs().sum()
    assert share > 0.7
    # resistance and stemness genes raise the hazard in the simulation
    assert (weights[weights.index.isin(set(FERROPTOSIS_RESISTANCE) | set(STEMNESS))] > 0).mean() > 0.7


def test_lasso_risk_score_validates_on_the_geo_cohort(lasso_model, demo_array, tmp_path):
    entry = md.risk_score_entry(lasso_model, "demo_tcga")
    assert entry["category"] == "risk score" and entry["method"] == "weighted_sum"
    assert entry["citation"] == "derived by ferrostem from demo_tcga" and entry["training_cohort"] == "demo_tcga"
    assert set(entry["weights"]) == set(entry["genes"])
    md.write_entry(entry, tmp_path / "model.yaml")
    loaded = md.read_entry(tmp_path / "model.yaml")
    assert loaded["weights"] == entry["weights"]

    tumours = demo_array[demo_array.obs["tissue"] == "tumor"]
    applied = md.apply_risk_score(loaded, md.log2_expression(tumours, loaded["genes"]))
    result = sv.analyse_endpoint(tumours.obs, applied.score.to_frame(), "OS")
    row = result.table.iloc[0]
    assert row["hr"] > 1 and row["p_wald"] < 0.05
    assert row["c_index"] > 0.55
    aucs = [row[f"auc_{y:g}y"] for y in result.auc_years if np.isfinite(row[f"auc_{y:g}y"])]
    assert aucs and all(auc > 0.5 for auc in aucs)


def test_apply_risk_score_reports_missing_weight_and_keeps_weights():
    entry = {
        "id": "toy",
        "genes": ["A", "B", "C"],
        "weights": {"A": 0.5, "B": -0.25, "C": 0.25},
        "method": "weighted_sum",
    }
    expression = pd.DataFrame({"A": [1.0, 2.0, 3.0, 4.0], "B": [4.0, 3.0, 2.0, 1.0]})
    applied = md.apply_risk_score(entry, expression)
    assert applied.genes_missing == ["C"] and applied.missing_weight_share == pytest.approx(0.25)
    z = (expression - expression.mean()) / expression.std()
    assert np.allclose(applied.score, 0.5 * z["A"] - 0.25 * z["B"])


def test_universe_from_catalogue_reads_the_validated_catalogue(tmp_path):
    """The universe comes from `signatures.load_catalogue`: every part of a multi-part signature, fixed symbols."""
    universe = md.resolve_universe({"catalogue": ["fps_he_melanoma", "mcpcounter"], "genes": ["TP53"]}, CATALOGUE)
    fps = next(s for s in load_catalogue(CATALOGUE) if s.id == "fps_he_melanoma")
    assert universe[0] == "TP53"
    assert set(fps.sets["pro"]) | set(fps.sets["anti"]) <= set(universe)  # both parts of a `sets:` entry
    assert "CAVIN2" in universe and "C" not in universe  # MCP-counter's published 'C' row, fixed
    assert len(universe) == len(set(universe))
    with pytest.raises(ConfigError, match="nosuch"):
        md.resolve_universe({"catalogue": ["nosuch"]}, CATALOGUE)


def test_universe_refuses_an_invalid_catalogue(tmp_path):
    (tmp_path / "ferro.yaml").write_text("signatures:\n  - id: core\n    genes: [GPX4, SLC7A11]\n")
    with pytest.raises(InputFormatError, match="signature core"):
        md.resolve_universe({"catalogue": ["core"]}, tmp_path)


def test_tumour_vs_normal_recovers_planted_fold_changes(demo_rnaseq):
    genes = ["GPX4", "SLC7A11", "AIFM2", "ARIH2", "NOT_A_GENE"]
    table, notes = md.tumour_vs_normal(demo_rnaseq, genes)
    table = table.set_index("gene")
    assert "NOT_A_GENE" in notes[0]
    assert table.at["GPX4", "n_pairs"] >= 5
    for gene in ["GPX4", "SLC7A11"]:
        assert table.at[gene, "paired_log2fc"] == pytest.approx(TUMOR_VS_NORMAL[gene], abs=0.5)
        assert table.at[gene, "p_paired_wilcoxon"] < 0.01
    assert abs(table.at["ARIH2", "paired_log2fc"]) < 0.4  # nothing planted


def test_gene_correlates_with_planted_immune_factor(demo_dir, demo_rnaseq):
    latent = pd.read_csv(demo_dir / "truth" / "latent_rnaseq.tsv", sep="\t", index_col="sample_id")
    tumours = demo_rnaseq[demo_rnaseq.obs["tissue"] == "tumor"]
    table = md.spearman_table(
        md.log2_expression(tumours, ["SLC7A11", "CD8A"]), latent.loc[tumours.obs_names, ["cytotoxic"]]
    )
    rho = table.set_index("feature")["rho"]
    assert rho["SLC7A11"] < -0.2  # resistance goes with fewer cytotoxic cells (planted -0.6)
    assert rho["CD8A"] > 0.5


def test_diagnostic_panel_auc(demo_dir, demo_rnaseq):
    planted = md.diagnostic_panel(demo_rnaseq, "planted", ["SLC7A11", "LIN28B", "EPCAM", "HMOX1", "TFRC"])
    assert planted.auc > 0.9 and planted.n_normal == 20 and len(planted.fold_auc) == 5
    assert planted.gene_auc["HMOX1"] < 0.3  # lower in tumours
    # null: the same genes with tumour/normal labels permuted. (Genes without a planted change are no null
    # on log-TPM: 600 planted changes shift every gene's share of the library.)
    permuted = demo_rnaseq.copy()
    permuted.obs["tissue"] = np.random.default_rng(7).permutation(permuted.obs["tissue"].to_numpy())
    null = md.diagnostic_panel(permuted, "null", ["SLC7A11", "LIN28B", "EPCAM", "HMOX1", "TFRC", "NOT_A_GENE"])
    assert null.auc < 0.7 and null.missing == ["NOT_A_GENE"] and "NOT_A_GENE" in null.warnings[0]


@pytest.mark.e2e
def test_workflow_writes_survival_sections_and_validates_the_risk_model(workflow_run):
    import yaml

    results = workflow_run / "results"
    entry = yaml.safe_load((results / "models" / "lasso_cox_demo_tcga_os.yaml").read_text())[0]
    assert entry["category"] == "risk score" and entry["training_cohort"] == "demo_tcga"
    table = pd.read_csv(results / "demo_geo" / "survival" / "survival.tsv", sep="\t").set_index("score")
    validation = table.loc[entry["id"]]
    assert validation["hr"] > 1 and validation["p_wald"] < 0.05
    for cohort in ["demo_tcga", "demo_geo"]:
        html = (results / cohort / "report.html").read_text()
        for title in ["Survival", "Immune infiltration and survival", "Genes of interest and diagnostic panels"]:
            assert f">{title}<" in html, (cohort, title)
    meta = pd.read_csv(results / "cross_cohort" / "survival_meta.tsv", sep="\t")
    assert {"meta_hr", "same_direction", "hr_demo_tcga", "hr_demo_geo"} <= set(meta.columns)
    assert "Across cohorts" in (results / "cross_cohort" / "report.html").read_text()


def test_spearman_table_equals_scipy_pair_by_pair():
    """The vectorised complete-column path and the pairwise path agree with scipy.stats.spearmanr."""
    from scipy import stats as scipy_stats

    from ferrostem.risk_models import spearman_table

    rng = np.random.default_rng(0)
    left = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    left["c"] = 1.0  # constant: no correlation
    left.loc[3, "d"] = np.nan  # missing value: pairwise complete rows
    right = pd.DataFrame(rng.normal(size=(60, 4)), columns=["w", "x", "y", "a"])
    right.loc[5, "y"] = np.nan
    right["x"] = np.round(right["x"])  # ties
    table = spearman_table(left, right)
    assert len(table) == 5 * 4 - 1  # a column is not correlated with itself
    for row in table.itertuples():
        pair = pd.concat([left[row.feature], right[row.score]], axis=1).dropna()
        if pair.iloc[:, 0].nunique() < 2:
            assert np.isnan(row.rho)
            continue
        rho, p = scipy_stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1])
        assert row.n == len(pair)
        assert row.rho == pytest.approx(rho, abs=1e-12)
        assert row.p == pytest.approx(p, rel=1e-9)
