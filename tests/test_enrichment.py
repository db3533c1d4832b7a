"""Enrichment: ORA against Fisher's exact test and statsmodels BH, prerank offline and on planted ranks."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

from ferrostem.enrichment_report import enrichment_section
from ferrostem.enrichment import (
    CollectionSpec,
    EnrichmentSettings,
    collection_resources,
    enrich,
    run_ora,
    run_prerank,
    ranking_from_de,
)
from ferrostem.genesets import GeneSet
from ferrostem.resources import ResourcePlan
from test_download_resources import config_with_defaults

REPO = Path(__file__).resolve().parents[1]


def _de_table(n: int = 2000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stat = rng.standard_normal(n)
    stat[:60] += 4  # planted up genes G0..G59
    stat[60:100] -= 4  # planted down genes G60..G99
    pvalue = 2 * (1 - __import__("scipy").stats.norm.cdf(np.abs(stat)))
    padj = multipletests(pvalue, method="fdr_bh")[1]
    return pd.DataFrame(
        {
            "gene_id": "",
            "symbol": [f"G{i}" for i in range(n)],
            "baseMean": 100.0,
            "log2FC": stat / 4,
            "lfcSE": 0.25,
            "stat": stat,
            "pvalue": pvalue,
            "padj": padj,
        }
    )


def test_ora_matches_fisher_and_bh():
    table = _de_table()
    rng = np.random.default_rng(5)
    sets = {
        "UP": GeneSet("UP", tuple(f"G{i}" for i in range(0, 80)), collection="c"),
        "DOWN": GeneSet("DOWN", tuple(f"G{i}" for i in range(50, 120)), collection="c"),
    }
    for i in range(8):
        sets[f"R{i}"] = GeneSet(f"R{i}", tuple(f"G{j}" for j in rng.choice(2000, 50, replace=False)), collection="c")
    ora = run_ora(table, sets, alpha=0.05)
    universe = set(table["symbol"])
    for direction, sign in (("up", 1), ("down", -1)):
        listed = set(table.loc[(table["padj"] < 0.05) & (np.sign(table["log2FC"]) == sign), "symbol"])
        part = ora[ora["direction"] == direction].set_index("set")
        for name, gene_set in sets.items():
            members = set(gene_set.genes)
            a = len(members & listed)
            b = len(members - listed)
            c = len(listed - members)
            d = len(universe) - a - b - c
            expected = fisher_exact([[a, b], [c, d]], alternative="greater").pvalue
            assert part.loc[name, "overlap"] == a
            np.testing.assert_allclose(part.loc[name, "pvalue"], expected, rtol=1e-9)
        np.testing.assert_allclose(part["padj"], multipletests(part["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    assert ora.set_index(["set", "direction"]).loc[("UP", "up"), "padj"] < 1e-10


def test_prerank_is_offline_and_finds_planted_direction(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    table = _de_table()
    ranking = ranking_from_de(table)
    rng = np.random.default_rng(9)
    sets = {
        "PLANTED_UP": GeneSet("PLANTED_UP", tuple(f"G{i}" for i in range(30)), collection="c"),
        "PLANTED_DOWN": GeneSet("PLANTED_DOWN", tuple(f"G{i}" for i in range(60, 90)), collection="c"),
    }
    for i in range(10):
        sets[f"R{i}"] = GeneSet(
            f"R{i}", tuple(f"G{j}" for j in rng.choice(range(100, 2000), 30, replace=False)), collection="c"
        )
    gsea, curves = run_prerank(ranking, sets, permutations=200, seed=1, min_size=5, max_size=500)
    rows = gsea.set_index("set")
    assert rows.loc["PLANTED_UP", "NES"] > 0 and rows.loc["PLANTED_UP", "fdr"] < 0.01
    assert rows.loc["PLANTED_DOWN", "NES"] < 0 and rows.loc["PLANTED_DOWN", "fdr"] < 0.01
    assert (rows.drop(["PLANTED_UP", "PLANTED_DOWN"])["fdr"] > 0.05).all()
    assert len(curves["PLANTED_UP"]["RES"]) == len(ranking)


def test_enrich_records_disabled_and_missing_collections(tmp_path):
    table = _de_table()
    gmt = tmp_path / "mine.gmt"
    gmt.write_text("TINY\tx\tG0\tG1\nUPSET\tx\t" + "\t".join(f"G{i}" for i in range(40)) + "\n")
    collections = [
        (CollectionSpec.from_config("mine", {"gmt": str(gmt), "theme": "ferroptosis"}), []),
        (
            CollectionSpec.from_config(
                "hallmark", {"resource": "msigdb_hallmark_v7_0", "enabled": False, "how_to_enable": "run make prefetch"}
            ),
            [],
        ),
        (CollectionSpec.from_config("catalogue", {"catalogue": str(tmp_path / "absent")}), []),
    ]
    result = enrich(table, collections, EnrichmentSettings(permutations=100), alpha=0.05)
    status = result.collections.set_index("collection")
    assert status.loc["mine", "status"] == "run"
    assert status.loc["hallmark", "status"] == "not run" and "make prefetch" in status.loc["hallmark", "reason"]
    assert "not present" in status.loc["catalogue", "reason"]
    assert result.sizes.set_index("set").loc["TINY", "reason"] == "2 tested genes < min_size 5"
    assert list(result.gsea["set"]) == ["UPSET"]


RESOURCE_COLLECTIONS = {"wp4313", "ferrdb_v2", "stemness", "hallmark"}


def test_real_config_runs_every_resource_collection_by_default():
    """A shipped cohort config has no enrichment block: the schema's collections, resources fetched."""
    config = config_with_defaults(REPO / "config" / "cohorts" / "tcga-lihc.yaml")
    collections = config["enrichment"]["collections"]
    assert {"ferroptosis_short", "catalogue"} | RESOURCE_COLLECTIONS == set(collections)
    usable, left_out = ResourcePlan.from_config(config).split(collection_resources(collections))
    assert left_out == {} and set(usable) == RESOURCE_COLLECTIONS
    assert usable["stemness"] == ["resources/cache/msigdb_c2_v7_1/c2.all.v7.1.symbols.gmt"]


def test_offline_demo_reports_each_collection_left_out_and_how_to_include_it(tmp_path):
    config = config_with_defaults(REPO / "config" / "config.yaml")
    collections = config["enrichment"]["collections"]
    usable, left_out = ResourcePlan.from_config(config).split(collection_resources(collections))
    assert usable == {} and set(left_out) == RESOURCE_COLLECTIONS
    gmt = tmp_path / "mine.gmt"
    gmt.write_text("UPSET\tx\t" + "\t".join(f"G{i}" for i in range(40)) + "\n")
    specs = [(CollectionSpec.from_config("mine", {"gmt": str(gmt)}), [])]
    specs += [(CollectionSpec.from_config(name, collections[name]), []) for name in sorted(RESOURCE_COLLECTIONS)]
    settings = EnrichmentSettings(permutations=100)
    result = enrich(_de_table(), specs, settings, left_out=left_out)
    status = result.collections.set_index("collection")
    assert status.loc["mine", "status"] == "run" and list(result.gsea["set"]) == ["UPSET"]
    assert (status.loc[sorted(RESOURCE_COLLECTIONS), "status"] == "not run").all()
    warnings = enrichment_section(
        result, settings, cohort="demo", comparison="tumour_vs_normal", test="tumor", alpha=0.05
    ).warnings
    hallmark = next(w for w in warnings if w.startswith("collection hallmark not run: "))
    assert "resource msigdb_hallmark_v7_0 not fetched: this run is offline (resources.fetch: false)" in hallmark
    assert "set resources.fetch: true" in hallmark and "make prefetch" in hallmark
    assert any(
        w.startswith(
            "collection ferrdb_v2 not run: resources ferrdb_v2_driver, ferrdb_v2_suppressor, "
            "ferrdb_v2_marker not fetched"
        )
        for w in warnings
    )
    assert not any("enabled: true" in w for w in warnings)  # the old advice, wrong since resources.fetch


def test_same_set_name_from_two_collections_keeps_both(tmp_path):
    table = _de_table()
    genes = "\t".join(f"G{i}" for i in range(40))
    (tmp_path / "short.gmt").write_text(f"WP4313_FERROPTOSIS\tshipped\t{genes}\n")
    (tmp_path / "full.gmt").write_text(f"WP4313_FERROPTOSIS\tdownloaded\t{genes}\tG40\n")
    collections = [
        (CollectionSpec.from_config("short", {"gmt": str(tmp_path / "short.gmt")}), []),
        (CollectionSpec.from_config("wp4313", {"gmt": str(tmp_path / "full.gmt")}), []),
    ]
    result = enrich(table, collections, EnrichmentSettings(permutations=100), alpha=0.05)
    assert set(result.gsea["set"]) == {"WP4313_FERROPTOSIS", "wp4313:WP4313_FERROPTOSIS"}
    assert "prefixed with 'wp4313:'" in result.collections.set_index("collection").loc["wp4313", "reason"]


@pytest.mark.e2e
def test_workflow_enrichment_outputs(workflow_run):
    base = workflow_run / "results" / "demo_tcga"
    collections = pd.read_csv(base / "enrichment" / "tumour_vs_normal" / "collections.tsv", sep="\t")
    assert collections.set_index("collection").loc["ferroptosis_short", "status"] == "run"
    assert (
        collections.set_index("collection").loc[["hallmark", "stemness", "ferrdb_v2", "wp4313"], "status"] == "not run"
    ).all()
    html = (base / "report.html").read_text()
    assert "not run" in html and "msigdb_hallmark_v7_0" in html
    ora = pd.read_csv(base / "enrichment" / "tumour_vs_normal" / "ora.tsv", sep="\t")
    assert set(ora["direction"]) == {"up", "down"}
