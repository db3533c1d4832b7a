"""GEO cohorts as they really come: a third tissue group, rows keyed by gene symbols, two-colour log ratios."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from download_server import LoopbackServer, gzip_bytes, platform_record, series_matrix
from test_download_http import quick_client as _quick_client

from ferrostem.checks import CohortAnnotations, check_cohort
from ferrostem.cohort import uns_to_python
from ferrostem.de import Comparison, DESettings, differential_expression
from ferrostem.download import download_cohort, settings
from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.harmonise import harmonise_cohort
from ferrostem.risk_models import diagnostic_panel, tumour_vs_normal
from ferrostem.scales import holds_log_ratios
from ferrostem.scoring import METHODS, ScoringMethod, score_cohort
from ferrostem.signature_report import _tumours, annotate
from ferrostem.signatures import Signature, load_alias_table, load_catalogue, resolve_resources
from ferrostem.survival_stage import tumour_samples
from ferrostem.cohort_report import cohort_section, harmonisation_table

GSE, GPL = "GSE77777", "GPL7777"
GROUPS = ["normal"] * 4 + ["superficial"] * 4 + ["Invasive"] * 4  # one spelling differs in case, as in series
SAMPLES = [f"GSM9{i:03d}" for i in range(len(GROUPS))]
PLANTED = {"GENE1": 2.0, "GENE2": -1.5}  # log2 fold changes, invasive over superficial


def _three_group_raw(folder: Path) -> Path:
    """A probe-keyed series (normal / superficial / invasive) with its platform record, as download writes it."""
    rng = np.random.default_rng(11)
    genes = [f"GENE{i}" for i in range(1, 41)]
    invasive = np.array([g == "Invasive" for g in GROUPS])
    table = {}
    for i, gene in enumerate(genes):
        values = rng.normal(8.0, 0.3, len(SAMPLES)) + invasive * PLANTED.get(gene, 0.0)
        table[f"{1000 + i}_at"] = list(np.round(values, 4))
    characteristics = [[f"tumour type: {g}" for g in GROUPS], [f"patient: P{i}" for i in range(len(SAMPLES))]]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{GSE}_series_matrix.txt.gz").write_bytes(
        gzip_bytes(series_matrix(GSE, GPL, SAMPLES, characteristics, table))
    )
    (folder / f"{GPL}.soft").write_text(
        platform_record(GPL, ["ID", "Gene Symbol"], [[p, g] for p, g in zip(table, genes)])
    )
    return folder


def _cohort(**geo: object) -> dict:
    return {
        "source": "geo",
        "accession": GSE,
        "geo": {
            "fields": {"tissue": "Tumour Type", "patient_id": "patient"},
            "tumor_values": ["invasive"],
            "normal_values": ["normal"],
            **geo,
        },
    }


def test_third_tissue_group_is_excluded_by_default_counted_and_named(tmp_path: Path):
    harmonise_cohort(_cohort(), _three_group_raw(tmp_path / "raw")).write_h5ad(tmp_path / "cohort.h5ad")
    adata = ad.read_h5ad(tmp_path / "cohort.h5ad")  # the record survives the .h5ad the report reads
    assert adata.n_obs == 8 and adata.obs["tissue"].astype(str).value_counts().to_dict() == {"tumor": 4, "normal": 4}
    record = adata.uns["harmonisation"]["other_tissue"]
    assert record["count"] == 4 and record["values"] == {"superficial": 4}
    assert list(record["samples"]) == SAMPLES[4:8] and "excluded" in record["rule"]
    assert adata.uns["harmonisation"]["samples_in"] == 12 and adata.uns["harmonisation"]["samples_out"] == 8
    assert any(
        "4 samples have a tissue value in neither" in w and "'superficial' (4 samples)" in w and SAMPLES[4] in w
        for w in adata.uns["harmonisation"]["warnings"]
    )
    shown = harmonisation_table(uns_to_python(adata.uns["harmonisation"]))
    row = shown[shown["rule"].str.contains("third tissue group")].iloc[0]
    assert row["count"] == 4 and "superficial: 4" in row["rule"] and SAMPLES[4] in row["example ids"]
    assert row["source"] == "other_tissue"


def test_third_tissue_group_error_names_the_values_and_the_key(tmp_path: Path):
    with pytest.raises(
        ConfigError,
        match=r"'superficial' \(4 samples\).*tumor_values \['invasive'\].*"
        r"normal_values \['normal'\].*geo.other_tissue",
    ):
        harmonise_cohort(_cohort(other_tissue="error"), _three_group_raw(tmp_path / "raw"))
    with pytest.raises(ConfigError, match="geo.other_tissue 'drop' is not one of exclude, error, keep"):
        harmonise_cohort(_cohort(other_tissue="drop"), _three_group_raw(tmp_path / "raw2"))


def test_superficial_vs_invasive_is_planned_and_fitted_and_other_tissue_is_never_a_tumour(tmp_path: Path):
    adata = harmonise_cohort(_cohort(other_tissue="keep"), _three_group_raw(tmp_path / "raw"))
    assert adata.n_obs == 12
    assert adata.obs["tissue"].astype(str).tolist() == ["normal"] * 4 + ["other"] * 4 + ["tumor"] * 4
    assert adata.obs["sample_type"].astype(str).tolist()[4:8] == ["Other"] * 4
    assert adata.obs["tissue_value"].astype(str).tolist() == GROUPS
    comparison = {
        "name": "invasive_vs_superficial",
        "column": "tissue_value",
        "test": "Invasive",
        "reference": "superficial",
    }
    checked = check_cohort(CohortAnnotations.from_anndata(adata), GSE, {"comparisons": [comparison]})
    design = checked["comparisons"][0]
    assert (design["n_test"], design["n_reference"], design["samples"], design["method"]) == (4, 4, 8, "limma")
    assert any(note.startswith("4 samples are in neither 'Invasive' nor 'superficial'") for note in design["notes"])
    result = differential_expression(adata, Comparison.from_config(comparison), DESettings(), cohort=GSE)
    assert sorted(result.plan.samples) == SAMPLES[4:]
    fold = result.table.set_index("symbol")["log2FC"]
    assert fold["GENE1"] == pytest.approx(2.0, abs=0.4) and fold["GENE2"] == pytest.approx(-1.5, abs=0.4)
    assert set(result.table.sort_values("pvalue")["symbol"][:2]) == {"GENE1", "GENE2"}
    # every tissue split counts the 'other' samples neither as tumours nor as normals
    genes, _ = tumour_vs_normal(adata, ["GENE1"])
    assert (genes.loc[0, "n_tumour"], genes.loc[0, "n_normal"]) == (4, 4)
    panel = diagnostic_panel(adata, "p", ["GENE1", "GENE2"], folds=2)
    assert (panel.n_tumour, panel.n_normal) == (4, 4)
    assert list(tumour_samples(adata.obs)[0]) == SAMPLES[8:]
    annotated = annotate(pd.DataFrame({"x": np.arange(12.0)}, index=adata.obs_names), adata.obs)
    assert list(_tumours(annotated).index) == SAMPLES[8:]
    section = cohort_section(adata, GSE)
    assert section.summary[-1].startswith(f"{GSE}: 4 tumour and 4 normal samples (and 4 of other tissue, neither)")


# ---------------------------------------------------------------------------------------------------------------
# Rows keyed by gene symbols; two-colour log ratios
# ---------------------------------------------------------------------------------------------------------------


def _ratio_table(symbols: list[str]) -> dict[str, list[float]]:
    """Centred log2 ratios (negatives, median near 0) with the first symbol on two rows, as a processed series."""
    rng = np.random.default_rng(5)
    rows = {}
    for _i, symbol in enumerate(symbols):
        rows[symbol] = list(np.round(rng.normal(0.0, 1.0, 6), 4))
    return rows


def _symbol_matrix(symbols: list[str]) -> tuple[str, dict[str, list[float]]]:
    table = _ratio_table(symbols)
    duplicate = [v - 0.5 for v in table[symbols[0]]]  # a lower-mean second row of the first symbol
    samples = [f"GSM5{i:03d}" for i in range(6)]
    text = series_matrix(GSE, GPL, samples, [[f"tissue: {'tumor' if i % 2 else 'normal'}" for i in range(6)]], table)
    first_row = "\t".join([f'"{symbols[0]}"'] + [str(v) for v in duplicate])
    text = text.replace("!series_matrix_table_end", first_row + "\n!series_matrix_table_end")
    return text, table


def test_symbol_keyed_series_downloads_no_platform_and_harmonises(tmp_path: Path):
    symbols = ["TP53", "GPX4", "SLC7A11", "ACSL4"]
    text, table = _symbol_matrix(symbols)
    with LoopbackServer(tmp_path / "www") as served:
        matrix_dir = served.root / "geo" / "series" / "GSE77nnn" / GSE / "matrix"
        matrix_dir.mkdir(parents=True)
        (matrix_dir / f"{GSE}_series_matrix.txt.gz").write_bytes(gzip_bytes(text))
        download = settings(
            {
                "download": {
                    "store": str(tmp_path / "store"),
                    "geo_ftp": served.url + "/geo",
                    "geo_query": served.url + "/geo/query/acc.cgi",
                }
            }
        )
        cohort = {"source": "geo", "accession": GSE, "geo": {"row_ids": "symbol", "fields": {"tissue": "tissue"}}}
        raw = download_cohort(cohort, download, tmp_path / "raw", _quick_client(tmp_path / "store"))
        asked = [path for _, path, _ in served.requests]
        assert served.geo_queries == [] and not any("platforms" in path or GPL in path for path in asked)
        adata = harmonise_cohort(cohort, raw)
        with pytest.raises(
            InputFormatError,
            match=r"1 probe ids are listed more than once, e.g. \['TP53'\].*"
            r"geo.row_ids: symbol",
        ):
            harmonise_cohort({**cohort, "geo": {"fields": {"tissue": "tissue"}}}, raw)
    assert sorted(adata.var_names) == sorted(symbols)
    assert np.allclose(np.asarray(adata[:, "TP53"].layers["log2"]).ravel(), table["TP53"], atol=1e-4)  # max_mean row
    record = adata.uns["harmonisation"]
    assert record["row_ids"] == "symbol" and record["probes_in"] == 5 and record["genes_out"] == 4
    assert "geo.row_ids" in adata.uns["provenance"]["platform_annotation"]
    assert not list(raw.glob(f"{GPL}*"))
    assert any("rows are gene symbols" in w and "5 rows gave 4 genes" in w for w in record["warnings"])


def test_log_ratio_cohort_skips_linear_only_methods_and_scores_the_rest(tmp_path: Path, monkeypatch):
    catalogue = load_catalogue()
    wanted = {"geometric_mean", "estimate", "ssgsea", "mean_z"}
    chosen = {}
    for sig in catalogue:
        if sig.method in wanted and sig.method not in chosen and not sig.needs_resource:
            chosen[sig.method] = sig
    assert set(chosen) == wanted
    signatures, unavailable = resolve_resources(list(chosen.values()), {})
    genes = sorted({g for sig in signatures for g in sig.genes} | {f"FILLER{i}" for i in range(200)})
    raw = tmp_path / "raw"
    raw.mkdir()
    text, _ = _symbol_matrix(genes)
    (raw / f"{GSE}_series_matrix.txt.gz").write_bytes(gzip_bytes(text))
    adata = harmonise_cohort({"source": "geo", "accession": GSE, "geo": {"row_ids": "symbol"}}, raw)
    assert holds_log_ratios(adata.uns)
    log2 = pd.DataFrame(adata.layers["log2"], index=adata.obs_names, columns=adata.var_names)
    linear = pd.DataFrame(adata.layers["tpm"], index=adata.obs_names, columns=adata.var_names)
    result = score_cohort(
        log2,
        linear,
        signatures,
        load_alias_table(),
        unavailable=unavailable,
        assay="microarray",
        log_ratios=holds_log_ratios(adata.uns),
    )
    coverage = result.coverage.set_index("signature_id")
    cytolytic, estimate = chosen["geometric_mean"].id, chosen["estimate"].id
    assert not coverage.at[cytolytic, "scored"] and "needs linear intensities" in coverage.at[cytolytic, "reason"]
    assert "log2 ratios" in coverage.at[cytolytic, "reason"]
    assert cytolytic not in result.scores.columns
    assert coverage.at[estimate, "scored"] and f"{estimate}__purity not given" in coverage.at[estimate, "reason"]
    assert f"{estimate}__purity" not in result.scores.columns and f"{estimate}__immune" in result.scores.columns
    for method in ("ssgsea", "mean_z"):
        sig_id = chosen[method].id
        assert coverage.at[sig_id, "scored"] and any(c.split("__")[0] == sig_id for c in result.scores.columns)
    # within-sample ranks of log ratios are not ranks of expression: said for ssGSEA and ESTIMATE, not for z-scores
    for method in ("ssgsea", "estimate"):
        assert "ranks the genes within each sample" in coverage.at[chosen[method].id, "reason"]
        assert any(chosen[method].id in w and "ratio to the reference" in w for w in result.warnings)
    assert "ranks the genes" not in str(coverage.at[chosen["mean_z"].id, "reason"])
    assert set(result.info["signature_id"]) == {chosen[m].id for m in ("estimate", "ssgsea", "mean_z")}
    # the same intensities-free cohort without the log-ratio flag would score the geometric mean of ratios
    plain = score_cohort(log2, linear, signatures, load_alias_table(), assay="microarray")
    assert cytolytic in plain.scores.columns and f"{estimate}__purity" in plain.scores.columns


def _sig(sig_id: str, method: str, genes: tuple[str, ...], housekeeping: tuple[str, ...] = ()) -> Signature:
    weights = dict.fromkeys(genes, 1.0) if method == "weighted_sum_hk" else None
    return Signature(
        id=sig_id,
        name=sig_id,
        category="immune response",
        status="VERIFIED",
        method=method,
        input_scale="log2",
        direction="",
        citation={"text": "t"},
        sets={} if weights else {"": genes},
        weights=weights,
        housekeeping=housekeeping,
    )


def test_one_unscorable_signature_never_stops_the_others_but_a_bug_does(monkeypatch):
    expr = pd.DataFrame(
        np.random.default_rng(2).normal(6, 1, size=(8, 5)), columns=list("ABCDE"), index=[f"s{i}" for i in range(8)]
    )
    good = _sig("good", "mean_z", ("A", "B", "C"))
    no_housekeeping = _sig("gep", "weighted_sum_hk", tuple("ABCDE"), housekeeping=("HK1",))
    every_gene = _sig("all", "ssgsea_raw", tuple("ABCDE"))  # ssGSEA needs genes outside the set
    result = score_cohort(expr, None, [no_housekeeping, good, every_gene], load_alias_table())
    coverage = result.coverage.set_index("signature_id")
    assert list(result.scores.columns) == ["good"] and bool(coverage.at["good", "scored"])
    assert not coverage.at["gep", "scored"] and "no housekeeping gene left" in coverage.at["gep", "reason"]
    assert not coverage.at["all", "scored"] and "needs between 1 and 4 genes" in coverage.at["all", "reason"]
    assert any(w.startswith("gep (gep) not scored: weighted_sum_hk: no housekeeping") for w in result.warnings)
    assert list(result.info["signature_id"]) == ["good"]

    def broken(*_: object, **__: object) -> pd.DataFrame:
        raise TypeError("a programming error")

    monkeypatch.setitem(METHODS, "mean_z", ScoringMethod("mean_z", "log2", broken, "broken"))
    with pytest.raises(TypeError, match="a programming error"):
        score_cohort(expr, None, [good], load_alias_table())


def test_schema_documents_and_checks_row_ids_and_other_tissue():
    import copy

    import yaml
    from conftest import REPO

    from ferrostem.config import validate_config

    schema = REPO / "workflow/schemas/config.schema.yaml"
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    good = copy.deepcopy(config)
    good["cohorts"]["demo_geo"]["geo"].update(row_ids="symbol", other_tissue="keep")
    validate_config(good, schema)
    for key, value in (("row_ids", "gene"), ("other_tissue", "drop")):
        bad = copy.deepcopy(config)
        bad["cohorts"]["demo_geo"]["geo"][key] = value
        with pytest.raises(ConfigError, match=rf"cohorts\.demo_geo\.geo\.{key} = '{value}' is not allowed"):
            validate_config(bad, schema)
