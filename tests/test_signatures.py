"""The signature catalogue: schema, transcriptions against the reference files, symbol mapping, coverage, demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.genesets import read_ferrdb, read_gmt
from ferrostem.scoring import METHODS, score_cohort
from ferrostem.resources import ResourcePlan
from ferrostem.signature_report import annotate, immune_section, signatures_section
from ferrostem.signatures import (
    DEFAULT_CATALOGUE,
    AliasTable,
    Signature,
    load_alias_table,
    load_catalogue,
    load_hgnc_complete_set,
    map_signature,
    read_mcpcounter,
    read_pcbc_weights,
    resolve_resources,
    resource_needs,
    select_signatures,
    validate_entries,
)
from conftest import REPO
from test_download_resources import SIGNATURE_RESOURCES, config_with_defaults

REQUIRED_IDS = {
    "wp4313_ferroptosis",
    "ferrdb_v2_drivers",
    "ferrdb_v2_suppressors",
    "ferrdb_v2_markers",
    "fps_he_melanoma",
    "hcc_frg10_liang2020",
    "ov_frg5_ye2021",
    "prad_frg7_liu2021",
    "oscc_frg10_li2021",
    "cml_frg5_zhong2024",
    "ferroptosis_core_regulators",
    "mrnasi_malta2018",
    "msigdb_benporath_es_1",
    "msigdb_wong_embryonic_stem_cell_core",
    "msigdb_bhattacharya_embryonic_stem_cell",
    "msigdb_malta_curated_stemness_markers",
    "estimate",
    "mcpcounter",
    "charoentong28",
    "cyt_rooney2015",
    "ifng6_ayers2017",
    "expanded_immune18_ayers2017",
    "tis_gep18_ayers_cristescu",
    "immune_checkpoints",
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Signature]:
    return {s.id: s for s in load_catalogue()}


def test_every_entry_validates_and_is_shippable(catalogue: dict[str, Signature]) -> None:
    assert REQUIRED_IDS <= set(catalogue)
    for sig in catalogue.values():
        assert sig.status in {"VERIFIED", "VERIFIED-SECONDARY"}
        assert sig.method in METHODS
        assert sig.sets or sig.weights or sig.resource, sig.id
        assert sig.citation_text
    assert catalogue["hcc_frg10_liang2020"].label.endswith("[VERIFIED-SECONDARY]")
    gep = catalogue["tis_gep18_ayers_cristescu"]
    assert len(gep.weights) == 18 and len(gep.housekeeping) == 11
    assert gep.weights["STAT1"] == 0.250229 and gep.weights["CD276"] == -0.0239  # not the wrong public copy


# Entries whose citation has no DOI/PMID, each for a stated reason; any other entry must carry one.
CITED_WITHOUT_IDENTIFIER = {
    "wp4313_ferroptosis": "a WikiPathways pathway revision, not a paper",
    "fps_he_melanoma": "FPSOmics paper: DOI not yet read from a primary source",
    "ov_frg5_ye2021": "read through signifinder, whose table gives author, journal and year only",
    "prad_frg7_liu2021": "read through signifinder, whose table gives author, journal and year only",
    "oscc_frg10_li2021": "read through signifinder, whose table gives author, journal and year only",
}


def test_every_cited_paper_has_a_doi_or_pmid(catalogue: dict[str, Signature]) -> None:
    without = {sig.id for sig in catalogue.values() if not (sig.citation.get("doi") or sig.citation.get("pmid"))}
    assert without == set(CITED_WITHOUT_IDENTIFIER)
    assert "doi:10.1093/nar/gkac935" in catalogue["ferrdb_v2_drivers"].citation_text
    assert "PMID:12228720" in catalogue["msigdb_ramalho_stemness_up"].citation_text


def test_schema_refuses_unverified_and_incomplete_entries(tmp_path: Path) -> None:
    with open(DEFAULT_CATALOGUE / "immune.yaml", encoding="utf-8") as handle:
        good = yaml.safe_load(handle)["signatures"][4]
    bad_status = dict(good, id="bad_status", status="UNVERIFIED")
    no_citation = {k: v for k, v in good.items() if k != "citation"} | {"id": "no_citation"}
    two_lists = dict(good, id="two_lists", sets={"a": ["GZMA"]})
    with pytest.raises(InputFormatError) as error:
        validate_entries([bad_status, no_citation, two_lists], "test.yaml")
    message = str(error.value)
    assert "bad_status: status" in message and "no_citation" in message and "two_lists" in message
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"signatures": [good]}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"signatures": [good]}))
    with pytest.raises(InputFormatError, match="also defined"):
        load_catalogue(tmp_path)


def test_include_exclude(catalogue: dict[str, Signature]) -> None:
    chosen = select_signatures(list(catalogue.values()), include=["estimate", "mcpcounter"], exclude=["mcpcounter"])
    assert [s.id for s in chosen] == ["estimate"]
    with pytest.raises(ConfigError, match="signatures.exclude.*nope"):
        select_signatures(list(catalogue.values()), exclude=["nope"])


# --- transcriptions checked against the reference files --------------------------------------------------


def test_inline_lists_match_reference_files(catalogue: dict[str, Signature], shared_reference: Path) -> None:
    wp = (shared_reference / "genesets" / "WP4313_ferroptosis_hgnc_symbols.txt").read_text().split()
    assert set(catalogue["wp4313_ferroptosis"].sets[""]) == set(wp) and len(wp) == 64
    gobp = read_gmt(shared_reference / "genesets" / "msigdb_v2023.2_GOBP_FERROPTOSIS.gmt")["GOBP_FERROPTOSIS"].genes
    assert set(catalogue["msigdb_gobp_ferroptosis"].sets[""]) == set(gobp)
    estimate = read_gmt(shared_reference / "immune" / "ESTIMATE_SI_geneset.gmt")
    assert set(catalogue["estimate"].sets["stromal"]) == set(estimate["StromalSignature"].genes)
    assert set(catalogue["estimate"].sets["immune"]) == set(estimate["ImmuneSignature"].genes)
    stem = read_gmt(shared_reference / "genesets" / "msigdb_v7.1_stemness_subset.gmt")
    for sid, name in [
        ("msigdb_benporath_es_2", "BENPORATH_ES_2"),
        ("msigdb_benporath_es_core_nine", "BENPORATH_ES_CORE_NINE"),
        ("msigdb_bhattacharya_embryonic_stem_cell", "BHATTACHARYA_EMBRYONIC_STEM_CELL"),
        ("msigdb_malta_curated_stemness_markers", "MALTA_CURATED_STEMNESS_MARKERS"),
    ]:
        assert set(catalogue[sid].sets[""]) == set(stem[name].genes), sid
    # MCP-counter: the upstream file's broken "C" row (Entrez 8436) is CAVIN2, in the file reader and the catalogue
    mcp_file = read_mcpcounter(shared_reference / "immune" / "MCPcounter_genes.txt")
    mcp = catalogue["mcpcounter"]
    assert "CAVIN2" in mcp_file["Endothelial_cells"] and "C" not in mcp_file["Endothelial_cells"]
    fixed = {part: {mcp.symbol_fixes.get(g, g) for g in genes} for part, genes in mcp.sets.items()}
    assert fixed == {part: set(genes) for part, genes in mcp_file.items()}
    assert sum(len(g) for g in mcp.sets.values()) == 111


def test_resource_readers_and_sizes(catalogue: dict[str, Signature], shared_reference: Path) -> None:
    c2 = shared_reference / "genesets" / "c2.all.v7.1.symbols.gmt"
    files = {
        "msigdb_c2_v7_1": c2,
        "pcbc_stemsig": shared_reference / "stemness" / "SC_PCBC_stemSig.rda",
        "charoentong_28": shared_reference / "immune" / "Charoentong2017_tableS6_Immune.txt",
        "ferrdb_v2_driver": shared_reference / "ferrdb_v2" / "driver.csv",
        "ferrdb_v2_suppressor": shared_reference / "ferrdb_v2" / "suppressor.csv",
        "ferrdb_v2_marker": shared_reference / "ferrdb_v2" / "marker.csv",
    }
    ready, unavailable = resolve_resources(list(catalogue.values()), files)
    assert not unavailable
    by_id = {s.id: s for s in ready}
    for sig in catalogue.values():
        if sig.resource and sig.resource.get("size"):
            assert len(by_id[sig.id].sets[""]) == sig.resource["size"], sig.id  # the pinned v7.1 sizes
    assert len(by_id["mrnasi_malta2018"].weights) == 12956
    charoentong = by_id["charoentong28"].sets
    assert len(charoentong) == 28 and sum(len(g) for g in charoentong.values()) == 782
    assert "Effector_memeory_CD4_T_cell" in charoentong and "Immature_B_cell" in charoentong
    assert {"ClQA", "ClQB"} <= {g for genes in charoentong.values() for g in genes}  # the published typos
    # FerrDb: driver.csv's symbol column is Symbol_or_reported_abbr; 'Validate' is normalised to 'validated'
    drivers = read_ferrdb(files["ferrdb_v2_driver"], "driver")[0].genes
    assert set(by_id["ferrdb_v2_drivers"].sets[""]) == set(drivers)  # the same filter as the enrichment sets
    raw = pd.read_csv(files["ferrdb_v2_driver"], dtype=str)
    typo = (
        raw["Confidence"].eq("Validate")
        & raw["Exp_organism"].str.contains("human", case=False)
        & raw["HGNC_ID"].str.startswith("HGNC:", na=False)
    )
    assert typo.any() and set(raw.loc[typo, "Symbol_or_reported_abbr"].str.strip()) <= set(drivers)
    assert len(drivers) == len(set(drivers)) > 300
    assert len(read_pcbc_weights(files["pcbc_stemsig"])) == 12956


# --- symbols and coverage -----------------------------------------------------------------------------------


def _sig(genes=None, sets=None, weights=None, fixes=None, method="mean_z") -> Signature:
    return Signature(
        id="s",
        name="s",
        category="ferroptosis",
        status="VERIFIED",
        method=method,
        input_scale="log2",
        direction="",
        citation={"text": "t"},
        sets=sets or ({"": tuple(genes)} if genes else {}),
        weights=weights,
        symbol_fixes=fixes or {},
    )


def test_alias_mapping_both_directions() -> None:
    aliases = load_alias_table()
    # signature uses the current symbol, cohort an old one (the demo's annotation has CARS, SDPR, WISP1)
    mapped, cov = map_signature(
        _sig(weights={"CARS1": 0.1, "GPX4": 0.2}, method="weighted_sum"), ["CARS", "GPX4"], aliases
    )
    assert mapped.weights == {"CARS": 0.1, "GPX4": 0.2} and cov.remapped == (("CARS1", "CARS"),)
    # signature uses an old symbol (ESTIMATE's GPR124, ODZ4), cohort the current one
    mapped, cov = map_signature(_sig(["GPR124", "ODZ4", "DCN"]), ["ADGRA2", "TENM4", "DCN"], aliases)
    assert mapped.sets[""] == ("ADGRA2", "TENM4", "DCN") and cov.found == 3
    # the cohort has both names: the exact one wins
    mapped, _ = map_signature(_sig(["CARS1"]), ["CARS", "CARS1"], aliases)
    assert mapped.sets[""] == ("CARS1",)


def test_source_typos_are_fixed(catalogue: dict[str, Signature], shared_reference: Path) -> None:
    aliases = load_alias_table()
    mcp = catalogue["mcpcounter"]
    cohort = [g for genes in mcp.sets.values() for g in genes if g != "C"] + ["CAVIN2"]
    mapped, cov = map_signature(mcp, cohort, aliases)
    assert "CAVIN2" in mapped.sets["Endothelial_cells"] and ("C", "CAVIN2") in cov.remapped
    mapped, cov = map_signature(mcp, cohort[:-1] + ["SDPR"], aliases)  # older annotation: CAVIN2 was SDPR
    assert "SDPR" in mapped.sets["Endothelial_cells"]
    char = resolve_resources(
        [catalogue["charoentong28"]],
        {"charoentong_28": shared_reference / "immune" / "Charoentong2017_tableS6_Immune.txt"},
    )[0][0]
    genes = sorted({g for part in char.sets.values() for g in part} - {"ClQA", "ClQB", "CD97"}) + [
        "C1QA",
        "C1QB",
        "ADGRE5",
    ]
    mapped, cov = map_signature(char, genes, aliases)
    assert {("ClQA", "C1QA"), ("ClQB", "C1QB"), ("CD97", "ADGRE5")} <= set(cov.remapped)
    assert cov.missing == ()


def test_signature_below_coverage_is_skipped_with_warning() -> None:
    aliases = load_alias_table()
    sig = _sig(["A", "B", "C", "D", "E"])
    mapped, cov = map_signature(sig, ["A", "B", "C"], aliases, min_coverage=0.7)
    assert mapped is None and not cov.scored and "3/5" in cov.reason and cov.missing == ("D", "E")
    mapped, cov = map_signature(sig, ["A", "B", "C", "D"], aliases, min_coverage=0.7)
    assert mapped is not None and cov.fraction == 0.8
    # weighted: 4 of 5 genes found (80%) but the missing one carries 60% of |weight|
    weighted = _sig(weights={"A": 0.1, "B": -0.1, "C": 0.1, "D": 0.1, "E": -0.6}, method="weighted_sum")
    mapped, cov = map_signature(weighted, ["A", "B", "C", "D"], aliases, min_coverage=0.7)
    assert mapped is None and cov.weight_missing == pytest.approx(0.6) and "|weight|" in cov.reason
    expr = pd.DataFrame(np.random.default_rng(0).normal(5, 1, size=(6, 4)), columns=list("ABCD"))
    result = score_cohort(expr, None, [sig, weighted], aliases, min_coverage=0.9)
    assert result.scores.shape[1] == 0
    assert any("s (s) not scored: coverage 4/5" in w for w in result.warnings)
    assert set(result.coverage["scored"]) == {False}


def test_hgnc_complete_set_reader(tmp_path: Path) -> None:
    path = tmp_path / "hgnc_complete_set.txt"
    path.write_text(
        "hgnc_id\tsymbol\tstatus\tprev_symbol\talias_symbol\n"
        "HGNC:1493\tCARS1\tApproved\tCARS\tCARS|MGC:11246\n"
        "HGNC:1\tGENEA\tApproved\t\tSHARED\n"
        "HGNC:2\tGENEB\tApproved\t\tSHARED|GENEA\n"
    )
    table = load_hgnc_complete_set(path)
    assert table.current("CARS") == "CARS1"
    assert table.current("SHARED") == "SHARED"  # ambiguous alias: left alone
    assert table.current("GENEA") == "GENEA"  # a current symbol is never an alias of another gene
    merged = load_alias_table().merged(table)
    assert merged.current("GPR124") == "ADGRA2" and merged.current("CARS") == "CARS1"
    assert isinstance(merged, AliasTable)


# --- the simulated demo: planted latent factors are recovered ----------------------------------------------


def test_demo_scores_recover_planted_factors(demo_rnaseq, demo_dir: Path, catalogue) -> None:
    signatures, unavailable = resolve_resources(list(catalogue.values()), {})
    log2 = pd.DataFrame(demo_rnaseq.layers["log2"], index=demo_rnaseq.obs_names, columns=demo_rnaseq.var_names)
    tpm = pd.DataFrame(demo_rnaseq.layers["tpm"], index=demo_rnaseq.obs_names, columns=demo_rnaseq.var_names)
    result = score_cohort(log2, tpm, signatures, load_alias_table(), unavailable=unavailable)
    latent = pd.read_csv(demo_dir / "truth" / "latent_rnaseq.tsv", sep="\t", index_col="sample_id")
    tumours = demo_rnaseq.obs_names[demo_rnaseq.obs["tissue"].eq("tumor")]
    scores, truth = result.scores.loc[tumours], latent.loc[tumours]
    f = truth["ferroptosis_resistance"]
    assert scores["ferroptosis_core_resistance"].corr(f) >= 0.8
    for cytotoxic in ["cyt_rooney2015", "mcpcounter__Cytotoxic_lymphocytes", "ifng6_ayers2017"]:
        assert scores[cytotoxic].corr(truth["cytotoxic"]) >= 0.8, cytotoxic
        assert scores[cytotoxic].corr(f) <= -0.3, cytotoxic  # planted rho(cytotoxic, F) = -0.6
    assert scores["estimate__stromal"].corr(truth["stromal"]) >= 0.6
    # ESTIMATE's immune genes mix the demo's immune programme with its cytotoxic one (GZMB, PRF1, NKG7, ...)
    # only ~10 of its 141 genes load on the demo's immune factor alone, so the separate correlation is modest
    assert scores["estimate__immune"].corr(truth["immune"]) >= 0.2
    assert scores["estimate__immune"].corr(truth["immune"] + truth["cytotoxic"]) >= 0.6
    assert set(result.info["score"]) == set(result.scores.columns)
    assert "mrnasi_malta2018" in set(result.coverage.loc[~result.coverage["scored"], "signature_id"])


def test_resource_backed_signatures_on_the_demo(demo_rnaseq, catalogue, shared_reference: Path) -> None:
    files = {
        "pcbc_stemsig": shared_reference / "stemness" / "SC_PCBC_stemSig.rda",
        "charoentong_28": shared_reference / "immune" / "Charoentong2017_tableS6_Immune.txt",
        "ferrdb_v2_driver": shared_reference / "ferrdb_v2" / "driver.csv",
    }
    wanted = [catalogue[i] for i in ("mrnasi_malta2018", "charoentong28", "ferrdb_v2_drivers")]
    signatures, unavailable = resolve_resources(wanted, files)
    assert not unavailable
    log2 = pd.DataFrame(demo_rnaseq.layers["log2"], index=demo_rnaseq.obs_names, columns=demo_rnaseq.var_names)
    # the demo carries 9,400 genes: about half of the 12,956 mRNAsi weights, so at the default 0.7 it is skipped
    default = score_cohort(log2, None, signatures, load_alias_table())
    assert "mrnasi_malta2018__minmax" not in default.scores
    assert any(w.startswith("mrnasi_malta2018") and "below min_coverage" in w for w in default.warnings)
    assert default.scores.filter(like="charoentong28__").shape[1] == 28
    lowered = score_cohort(log2, None, signatures, load_alias_table(), min_coverage=0.4)
    minmax = lowered.scores["mrnasi_malta2018__minmax"]
    assert minmax.min() == 0 and minmax.max() == 1
    assert lowered.scores["mrnasi_malta2018__spearman"].between(-1, 1).all()


def test_catalogue_resources_follow_the_config(catalogue: dict[str, Signature]) -> None:
    """Every resource-backed catalogue entry is scored from its fetched resource in a real config, and left out
    (with the reason) in the offline demo."""
    needs = resource_needs(list(catalogue.values()))
    assert set(needs) == SIGNATURE_RESOURCES
    assert needs["pcbc_stemsig"] == ["mrnasi_malta2018"] and needs["charoentong_28"] == ["charoentong28"]
    real = ResourcePlan.from_config(config_with_defaults(REPO / "config" / "cohorts" / "tcga-lihc.yaml"))
    assert real.split({rid: [rid] for rid in needs})[1] == {}
    demo = ResourcePlan.from_config(config_with_defaults(REPO / "config" / "config.yaml"))
    usable, left_out = demo.split({rid: [rid] for rid in needs})
    assert usable == {} and set(left_out) == SIGNATURE_RESOURCES


def test_offline_demo_sections_name_each_signature_left_out_and_how_to_include_it(
    catalogue: dict[str, Signature],
) -> None:
    left_out = ResourcePlan.from_config(config_with_defaults(REPO / "config" / "config.yaml")).split(
        {rid: [rid] for rid in resource_needs(list(catalogue.values()))}
    )[1]
    signatures, unavailable = resolve_resources(list(catalogue.values()), {}, left_out)
    assert set(unavailable) == {s.id for s in catalogue.values() if s.needs_resource}
    genes = sorted({g for s in signatures for g in s.genes})
    rng = np.random.default_rng(1)
    samples = [f"S{i}" for i in range(12)]
    log2 = pd.DataFrame(rng.normal(6, 1, size=(12, len(genes))), index=samples, columns=genes)
    result = score_cohort(log2, 2**log2 - 1, signatures, load_alias_table(), unavailable=unavailable)
    obs = pd.DataFrame({"tissue": ["tumor"] * 8 + ["normal"] * 4}, index=samples)
    annotated = annotate(result.scores, obs)
    section = signatures_section(
        result, annotated, order_by="ferroptosis_core_resistance", min_coverage=0.7, normalise_ssgsea=True
    )
    mrnasi = next(w for w in section.warnings if w.startswith("mrnasi_malta2018 not scored: "))
    assert "resource pcbc_stemsig not fetched: this run is offline (resources.fetch: false)" in mrnasi
    assert "set resources.fetch: true" in mrnasi and "make prefetch" in mrnasi
    assert "pcbc_stemsig not fetched" in section.context["scatter_note"]
    immune = immune_section(result, annotated, order_by="ferroptosis_core_resistance")
    assert any(
        w.startswith("charoentong28 not scored: resource charoentong_28 not fetched: this run is offline")
        for w in immune.warnings
    )
    assert not any("signatures.resources" in w for w in section.warnings + immune.warnings)  # the old advice


@pytest.mark.e2e
def test_workflow_writes_the_score_contract(workflow_run: Path) -> None:
    for cohort in ("demo_tcga", "demo_geo"):
        folder = workflow_run / "results" / cohort / "scores"
        scores = pd.read_csv(folder / "scores.tsv", sep="\t")
        info = pd.read_csv(folder / "score_info.tsv", sep="\t")
        coverage = pd.read_csv(folder / "coverage.tsv", sep="\t")
        annotated = pd.read_csv(folder / "scores_annotated.tsv", sep="\t")
        assert scores.columns[0] == "sample_id" and scores["sample_id"].is_unique
        assert all(pd.api.types.is_numeric_dtype(scores[c]) for c in scores.columns[1:])
        assert list(info["score"]) == list(scores.columns[1:])
        assert {"score", "signature_id", "name", "category", "method", "direction", "citation"} <= set(info.columns)
        assert {"estimate__stromal", "estimate__purity", "mcpcounter__T_cells", "cyt_rooney2015"} <= set(scores.columns)
        assert {"tissue", "stage", "OS", "OS.time", "estimate__immune"} <= set(annotated.columns)
        assert len(annotated) == len(scores)
        assert "mrnasi_malta2018" in set(coverage.loc[~coverage["scored"], "signature_id"])
        report = (workflow_run / "results" / cohort / "report.html").read_text()
        assert 'id="signatures"' in report and 'id="immune"' in report
        assert (
            "not fetched: this run is offline (resources.fetch: false)" in report and "Coverage per signature" in report
        )
        assert (
            "collection hallmark not run: resource msigdb_hallmark_v7_0 not fetched: this run is offline "
            "(resources.fetch: false)"
        ) in report


def _few_tumour_scores(n_tumours: int):
    """20 normals and `n_tumours` tumours scored for ferroptosis, stemness, immune and checkpoint scores."""
    from ferrostem.scoring import CohortScores

    rng = np.random.default_rng(n_tumours)
    n = 20 + n_tumours
    ids = [f"S{i}" for i in range(n)]
    names = {
        "fer": "ferroptosis",
        "stem": "stemness",
        "cyt_rooney2015": "immune response",
        "tcells": "immune cell",
        "PDCD1": "checkpoint",
    }
    scores = pd.DataFrame(rng.standard_normal((n, len(names))), index=ids, columns=list(names))
    info = pd.DataFrame(
        {
            "score": list(names),
            "signature_id": list(names),
            "name": list(names),
            "category": list(names.values()),
            "method": "mean_z",
            "direction": "",
            "citation": "",
        }
    )
    coverage = pd.DataFrame(
        {
            "signature_id": list(names),
            "name": list(names),
            "method": "mean_z",
            "category": list(names.values()),
            "genes_found": 5,
            "genes_total": 5,
            "coverage": 1.0,
            "weight_missing": 0.0,
            "remapped": "",
            "missing": "",
            "scored": True,
            "reason": "",
        }
    )
    obs = pd.DataFrame(
        {"tissue": ["normal"] * 20 + ["tumor"] * n_tumours, "stage": [None] * 20 + ["Stage II"] * n_tumours}, index=ids
    )
    return CohortScores(scores, info, coverage, []), obs


@pytest.mark.parametrize("n_tumours", [0, 3])
def test_tumour_summaries_with_fewer_than_five_tumours_say_so(n_tumours):
    from ferrostem.report import render_report
    from ferrostem.signature_report import annotate, immune_section, signatures_section

    result, obs = _few_tumour_scores(n_tumours)
    annotated = annotate(result.scores, obs)
    signatures = signatures_section(result, annotated, order_by="fer", min_coverage=0.7, normalise_ssgsea=False)
    immune = immune_section(result, annotated, order_by="fer")
    expected = f"not possible with {n_tumours} tumour sample{'s' if n_tumours != 1 else ''} (at least 5 needed)"
    assert any(expected in w for w in signatures.warnings)
    assert any(expected in w for w in immune.warnings)
    # no correlation was computed on the normals in the tumours' place
    assert signatures.context["correlations"] == "" and "rho" not in " ".join(signatures.summary + immune.summary)
    html = render_report([signatures, immune], cohort="few", title="few", simulated=True)
    import re

    assert not re.search(r"\bnan\b", re.sub(r"(data:image|data-svg-gzip=\")[^\"]+", "", html))


# -- a user's own GMT, scored per sample like catalogue entries --------------------------------------------------
def test_user_gmt_sets_are_scored_per_sample_and_carried_like_catalogue_entries(tmp_path: Path):
    from ferrostem.config import validate_config
    from ferrostem.scoring import mean_z, score_cohort, ssgsea
    from ferrostem.signatures import load_alias_table, with_user_gmts

    rng = np.random.default_rng(7)
    genes = [f"G{i}" for i in range(200)] + ["GPX4", "SLC7A11", "AIFM2", "ACSL4"]
    log2 = pd.DataFrame(rng.normal(5, 1, (30, len(genes))), index=[f"S{i}" for i in range(30)], columns=genes)
    gmt = tmp_path / "my sets.gmt"
    gmt.write_text("SUPPRESSORS\tmy suppressors\tGPX4\tSLC7A11\tAIFM2\tG1\tG2\nDRIVERS\t\tACSL4\tG3\tG4\tG5\tG6\n")
    specs = [
        {"gmt": str(gmt), "category": "ferroptosis"},
        {"gmt": str(gmt.with_name("other.gmt")), "category": "stemness", "method": "mean_z"},
    ]
    gmt.with_name("other.gmt").write_text("STEM\tx\tG10\tG11\tG12\tG13\tG14\n")
    signatures = with_user_gmts([], specs)
    assert [s.id for s in signatures] == ["user_my_sets_SUPPRESSORS", "user_my_sets_DRIVERS", "user_other_STEM"]
    result = score_cohort(log2, None, signatures, load_alias_table(), normalise_ssgsea=True)
    expected = ssgsea(log2, {"": ("GPX4", "SLC7A11", "AIFM2", "G1", "G2")}, normalise=True)[""]
    np.testing.assert_allclose(result.scores["user_my_sets_SUPPRESSORS"], expected, rtol=1e-12)
    np.testing.assert_allclose(result.scores["user_other_STEM"], mean_z(log2, ["G10", "G11", "G12", "G13", "G14"]))
    info = result.info.set_index("score")
    assert info.at["user_other_STEM", "category"] == "stemness"  # the survival and immune sections select by category
    assert (
        "user gene set SUPPRESSORS from my sets.gmt: my suppressors" in info.at["user_my_sets_SUPPRESSORS", "citation"]
    )
    with pytest.raises(ConfigError, match=r"score ids \['user_my_sets_DRIVERS'"):
        with_user_gmts(signatures, specs[:1])
    # a user set can order the immune heatmap; the config names it before any job runs
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["signatures"].update(user_gmts=[specs[0]], heatmap_order_by="user_my_sets_SUPPRESSORS")
    validate_config(config, REPO / "workflow/schemas/config.schema.yaml", [s.id for s in load_catalogue()])
    config["signatures"]["user_gmts"] = [{"gmt": str(gmt), "category": "ferroptosis", "method": "gsva"}]
    with pytest.raises(ConfigError, match="user_gmts"):
        validate_config(config, REPO / "workflow/schemas/config.schema.yaml", [s.id for s in load_catalogue()])
