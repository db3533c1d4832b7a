"""Gene-set readers against the pinned reference files in ../shared and hand-made edge cases."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ferrostem.errors import InputFormatError
from ferrostem.signatures import catalogue_sets
from ferrostem.genesets import (
    GeneSet,
    filter_sets,
    normalise_confidence,
    read_ferrdb,
    read_gmt,
    read_wp4313_datanodes,
    stemness_subset,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "resources" / "genesets" / "ferroptosis_short.gmt"


def test_shipped_gmt_matches_the_pinned_sources(shared_reference):
    sets = read_gmt(SHIPPED, "ferroptosis_short")
    assert {n: len(s.genes) for n, s in sets.items()} == {
        "WP4313_FERROPTOSIS": 64,
        "GOBP_FERROPTOSIS": 5,
        "FPS_PRO_FERROPTOSIS": 23,
        "FPS_ANTI_FERROPTOSIS": 9,
        "FERROPTOSIS_CORE_SUPPRESSORS": 7,
        "FERROPTOSIS_CORE_DRIVERS": 5,
    }
    genesets = shared_reference / "genesets"
    wp_symbols = set((genesets / "WP4313_ferroptosis_hgnc_symbols.txt").read_text().split())
    assert set(sets["WP4313_FERROPTOSIS"].genes) == wp_symbols
    assert set(read_wp4313_datanodes(genesets / "WP4313-datanodes.tsv").genes) == wp_symbols
    gobp = read_gmt(genesets / "msigdb_v2023.2_GOBP_FERROPTOSIS.gmt")["GOBP_FERROPTOSIS"]
    assert set(sets["GOBP_FERROPTOSIS"].genes) == set(gobp.genes)
    assert all(s.description for s in sets.values())  # every shipped list carries its citation


def test_wp4313_uses_hgnc_column_not_labels(shared_reference):
    genes = read_wp4313_datanodes(shared_reference / "genesets" / "WP4313-datanodes.tsv").genes
    assert "CYBB" in genes and "ALOX15" in genes and "NOX2" not in genes and "15-LO" not in genes
    assert len(genes) == len(set(genes)) == 64


def test_stemness_subset_of_c2_matches_reference_extract(shared_reference):
    c2 = read_gmt(shared_reference / "genesets" / "c2.all.v7.1.symbols.gmt", "c2")
    subset = stemness_subset(c2)
    reference = read_gmt(shared_reference / "genesets" / "msigdb_v7.1_stemness_subset.gmt")
    assert set(subset) == set(reference)
    for name, gene_set in reference.items():
        assert subset[name].genes == gene_set.genes
    assert len(subset["BENPORATH_ES_1"].genes) == 379 and len(subset["MALTA_CURATED_STEMNESS_MARKERS"].genes) == 21


def test_ferrdb_filters_and_normalises(tmp_path):
    header = (
        "RCD,Symbol,HGNC_ID,ENSG_stable,Dependence,Evidence,Exp_organism,Pathway,Confidence,Experiments,Caution,"
        "UniProtAC,PMID,Remark,Latest_update,Data_source,Gene_type_hgnc_locus_type_or_other\n"
    )
    rows = [
        ("GPX4", "HGNC:4556", "Human", "Validated"),
        ("GPX4", "HGNC:4556", "Human, mice", "Validated"),
        ("SLC7A11", "HGNC:11059", "Human", "Validate"),
        ("RNF113A ", "HGNC:12974", "human", "validated"),
        ("AIFM2", "HGNC:21411", "Mice", "Validated"),
        ("FSP1X", "HGNC:1", "Human", "Deduecd"),
        ("circ_0007142", "_NA_", "Human", "Validated"),
        ("NQO1", "HGNC:2874", "Human, rat", "Screened"),
    ]
    text = header + "".join(
        f'Ferroptosis,{s},{h},_NA_,_NA_,x,"{o}",p,{c},0,_NA_,_NA_,1,_NA_,2020,t,gene\n' for s, h, o, c in rows
    )
    path = tmp_path / "suppressor.csv"
    path.write_text(text)
    gene_set, report = read_ferrdb(path, "suppressor")
    assert gene_set.genes == ("GPX4", "SLC7A11", "RNF113A")
    assert (report.non_human, report.not_validated, report.no_hgnc_symbol, report.duplicate_symbols) == (1, 2, 1, 1)
    assert report.confidence_values == {"Validated": 6, "Deduced": 1, "Screened": 1}
    assert normalise_confidence("Deduecd") == "Deduced" and normalise_confidence(" Validate ") == "Validated"


def test_ferrdb_reference_files(shared_reference):
    folder = shared_reference / "ferrdb_v2"
    for category in ("driver", "suppressor", "marker"):
        gene_set, report = read_ferrdb(folder / f"{category}.csv", category)
        raw = pd.read_csv(folder / f"{category}.csv", dtype=str, keep_default_na=False)
        symbol = raw.filter(like="Symbol").iloc[:, 0].str.strip()
        human = raw["Exp_organism"].str.lower().str.contains("human")
        assert len(gene_set.genes) == len(set(gene_set.genes)) == report.genes > 0
        assert set(gene_set.genes) <= set(symbol[human])
        assert all(g == g.strip() and not g.lower().startswith("circ") for g in gene_set.genes)
        assert report.rows == len(raw) and not report.unknown_confidence
    driver, _ = read_ferrdb(folder / "driver.csv", "driver")
    assert "ACSL4" in driver.genes and "TFRC" in driver.genes
    suppressor, _ = read_ferrdb(folder / "suppressor.csv", "suppressor")
    assert {"GPX4", "SLC7A11", "AIFM2"} <= set(suppressor.genes)


def test_bad_gmt_names_file_and_line(tmp_path):
    path = tmp_path / "bad.gmt"
    path.write_text("GOOD\tdesc\tA\tB\nBROKEN only-two-fields\n")
    with pytest.raises(InputFormatError, match=r"bad.gmt:2: a GMT line needs"):
        read_gmt(path)
    path.write_text("A\td\tX\nA\td\tY\n")
    with pytest.raises(InputFormatError, match="appears twice"):
        read_gmt(path)


def test_filter_sets_records_why(tmp_path):
    sets = {
        "SMALL": GeneSet("SMALL", ("A", "B", "Z"), collection="c"),
        "OK": GeneSet("OK", ("A", "B", "C", "D"), collection="c"),
        "BIG": GeneSet("BIG", tuple("ABCDEFG"), collection="c"),
        "NONE": GeneSet("NONE", ("X", "Y"), collection="c"),
    }
    kept, table = filter_sets(sets, list("ABCDEFG"), min_size=3, max_size=5)
    assert list(kept) == ["OK"]
    reasons = table.set_index("set")["reason"]
    assert reasons["SMALL"] == "2 tested genes < min_size 3"
    assert reasons["BIG"] == "7 tested genes > max_size 5"
    assert reasons["NONE"] == "no gene of the set was tested"


def test_catalogue_sets():
    sets, notes = catalogue_sets(REPO / "resources" / "signatures")
    assert len(sets["wp4313_ferroptosis"].genes) == 64
    assert {"fps_he_melanoma_pro", "fps_he_melanoma_anti", "estimate_stromal", "estimate_immune"} <= set(sets)
    assert "CAVIN2" in sets["mcpcounter_Endothelial_cells"].genes  # MCP-counter's broken "C" row, fixed
    assert "doi" in sets["cyt_rooney2015"].description.lower() or "http" in sets["cyt_rooney2015"].description
    assert any("hcc_frg10_liang2020: a weighted score" in n for n in notes)
    assert any("mrnasi_malta2018: genes come from resource pcbc_stemsig" in n for n in notes)
