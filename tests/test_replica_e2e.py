"""End to end on a real-format replica served by the loopback server (issue 11, Tests).

Two cohorts, written in the formats the real services answer and served over HTTP on 127.0.0.1:
- a GDC project (the demo generator's GDC files on a smaller gene set: sorted paging, /status, /data tars with
  MANIFEST.txt, cases whose recurrence diagnosis comes before the primary) whose survival is the TCGA-CDR table
  `Survival_SupplementalTable_S1_20171025_xena_sp` at the PanCanAtlas hub path, with planted OS/DSS/DFI/PFI;
- a GSE14520-shaped series: `Tissue: Liver Tumor Tissue` / `Liver Non-Tumor Tissue` (some samples `tissue:`),
  `Individual: ...`, a repeated key, no survival in the matrix but in `suppl/GSE14520_Extra_Supplement.txt.gz`
  (one sample without a row, one row of another platform's sample), and a platform reachable only through
  acc.cgi (no .annot on the server).
The shipped gse14520.yaml cohort block is used as it is (plus a comparison). The whole workflow runs with
Snakemake (resources.fetch: false, no network); the test then reads the reports and tables.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake
from download_server import LoopbackServer, gzip_bytes, platform_record

from ferrostem import demo
from ferrostem.sources import geo, xena

pytestmark = pytest.mark.e2e

GSE, GPL = "GSE14520", "GPL3921"
PARAMETERS = {
    "seed": 11,
    "n_tumor": 40,
    "n_normal": 10,
    "n_extra_aliquots": 2,
    "n_orphan_clinical": 2,
    "n_random_de": 150,
    "geo_n_tumor": 40,
    "geo_n_normal": 10,
    "hazard_ratio_per_sd": 2.5,
}
OTHER_GENES = 1200  # random genes beside every gene that a signature, gene set or config list names
LOWER_CASE_TISSUE_EVERY = 4  # every 4th sample writes `tissue:` instead of `Tissue:`
SAMPLE_WITHOUT_ROW = -1  # the last sample of the series has no row in the supplement
EXTRA_ROW = "GSM9999999"  # a supplement row of the other platform (GPL571): not a sample of this matrix
CDR_OTHER_TYPE = ["TCGA-BR-0001", "TCGA-BR-0002"]  # CDR rows of another cancer type (left out)


def replica_genes(config: dict) -> pd.DataFrame:
    """The demo's gene table cut to the genes the analyses name plus a seeded random rest."""
    genes = demo.demo_genes()
    named_text = " ".join(
        p.read_text()
        for folder in ("resources/signatures", "resources/genesets")
        for p in (REPO / folder).iterdir()
        if p.suffix in {".yaml", ".gmt", ".tsv"}
    )
    survival = config["survival"]
    named = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9.-]*", named_text)) | set(survival["lasso"]["universe"])
    named |= set(survival["genes_of_interest"]) | set(survival["checkpoint_genes"])
    named |= {g for panel in survival["panels"].values() for g in panel}
    named |= set(demo.PAR_GENES) | set(demo.TUMOR_VS_NORMAL) | {g for p in demo._programmes().values() for g in p}
    keep = genes["symbol"].isin(named)
    rest = genes.index[~keep].to_numpy()
    chosen = np.random.default_rng(5).choice(rest, size=min(OTHER_GENES, len(rest)), replace=False)
    return genes[keep | genes.index.isin(chosen)].reset_index(drop=True)


def write_cdr(path: Path, latent: pd.DataFrame) -> pd.DataFrame:
    """A TCGA-CDR table in the real xena_sp layout for the replica's patients; OS hazard rises with the
    ferroptosis-resistance factor (so with GPX4, SLC7A11, ...). Returns it (one row per patient)."""
    rng = np.random.default_rng(21)
    tumours = latent[latent["tissue"] == "tumor"].drop_duplicates("patient_id")
    f = tumours["ferroptosis_resistance"].to_numpy()
    n = len(tumours)
    event_time = 900.0 * rng.exponential(size=n) / np.exp(np.log(3.0) * f)
    censor = rng.uniform(200, 3000, size=n)
    os_time = np.maximum(np.round(np.minimum(event_time, censor)), 1)
    os_event = (event_time <= censor).astype(int)
    table = pd.DataFrame(
        {
            "sample": tumours["patient_id"] + "-01",
            "_PATIENT": tumours["patient_id"],
            "cancer type abbreviation": "DEMO",
            "OS": os_event,
            "OS.time": os_time,
        }
    )
    table["DSS"] = np.where(os_event == 1, rng.integers(0, 2, n), 0)  # some deaths are not disease-specific
    table["DSS.time"] = os_time
    table["PFI"] = np.maximum(os_event, rng.integers(0, 2, n))
    table["PFI.time"] = np.round(os_time * np.where(table["PFI"] > os_event, 0.5, 1.0))
    dfi = rng.integers(0, 2, n).astype(float)
    dfi[:8] = np.nan  # DFI is NA for patients never disease-free (as in the real CDR)
    table["DFI"], table["DFI.time"] = dfi, np.where(np.isnan(dfi), np.nan, table["PFI.time"])
    table["Redaction"] = ""
    table.loc[table.index[1], "Redaction"] = "Redacted"
    other = table.head(2).assign(
        **{
            "_PATIENT": CDR_OTHER_TYPE,
            "sample": [p + "-01" for p in CDR_OTHER_TYPE],
            "cancer type abbreviation": "BRCA",
            "OS": 1,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([table, other]).to_csv(path, sep="\t", index=False, na_rep="NA")
    return table.set_index("_PATIENT")


def _cells(line: str) -> list[str]:
    return [c.strip('"') for c in line.rstrip("\n").split("\t")[1:]]


def gse14520_replica(demo_mirror: Path, root: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """The demo series rewritten as GSE14520 shapes it; returns the supplement table and what was planted."""
    source = demo_mirror / "ftp.ncbi.nlm.nih.gov/geo/series/GSE0nnn/GSE0000/matrix/GSE0000_series_matrix.txt.gz"
    lines = gzip.decompress(source.read_bytes()).decode().splitlines(keepends=True)
    by_key: dict[str, list[str]] = {}
    kept, samples = [], []
    for line in lines:
        if line.startswith("!Sample_geo_accession"):
            samples = _cells(line)
        if not line.startswith("!Sample_characteristics_ch1"):
            kept.append(line.replace("GSE0000", GSE).replace("GPL0000", GPL))
            continue
        cells = _cells(line)
        key = cells[0].split(":")[0]
        by_key[key] = [c.split(": ", 1)[1] for c in cells]
        if key == "tissue":  # GSE14520's wording; some samples write the key in lower case
            text = [
                f"{'tissue' if i % LOWER_CASE_TISSUE_EVERY == 0 else 'Tissue'}: "
                f"{'Liver Tumor Tissue' if v == 'tumor' else 'Liver Non-Tumor Tissue'}"
                for i, v in enumerate(by_key[key])
            ]
        elif key == "patient":
            text = [f"Individual: {v}" for v in by_key[key]]
        else:
            continue  # survival, age, sex and stage are in the supplement only
        kept.append("!Sample_characteristics_ch1\t" + "\t".join(f'"{t}"' for t in text) + "\n")
        if key == "patient":  # a key repeated in one sample, as real series have
            notes = [[""] * len(samples), [""] * len(samples)]
            notes[0][0], notes[1][0] = "note: first", "note: second"
            kept += ["!Sample_characteristics_ch1\t" + "\t".join(f'"{t}"' for t in row) + "\n" for row in notes]
    matrix_dir = root / "geo/series/GSE14nnn" / GSE / "matrix"
    matrix_dir.mkdir(parents=True)
    (matrix_dir / f"{GSE}-{GPL}{geo.MATRIX_SUFFIX}").write_bytes(gzip_bytes("".join(kept)))
    (matrix_dir / f"{GSE}-GPL571{geo.MATRIX_SUFFIX}").write_bytes(
        gzip_bytes(
            f'!Series_geo_accession\t"{GSE}"\n!Sample_geo_accession\t"{EXTRA_ROW}"\n!series_matrix_table_begin\n'
            f'"ID_REF"\t"{EXTRA_ROW}"\n!series_matrix_table_end\n'
        )
    )
    tumour = np.array(by_key["tissue"]) == "tumor"
    status = np.array([int(v) for v in by_key["survival status"]])
    supplement = pd.DataFrame(
        {
            "Affy_GSM": samples,
            "Tissue Type": np.where(tumour, "Tumor", "Non-Tumor"),
            "Survival status": status,
            "Survival months": [float(v) for v in by_key["survival months"]],
            "Recurr status": (np.arange(len(samples)) % 3 == 0).astype(int),
            "Recurr months": [round(float(v) * 0.7, 1) for v in by_key["survival months"]],
            "Age": [int(v) for v in by_key["age"]],
            "Gender": by_key["gender"],
        }
    )
    table = pd.concat(
        [
            supplement.iloc[:SAMPLE_WITHOUT_ROW],
            pd.DataFrame(
                [
                    {
                        "Affy_GSM": EXTRA_ROW,
                        "Tissue Type": "Tumor",
                        "Survival status": 1,
                        "Survival months": 3.0,
                        "Recurr status": 1,
                        "Recurr months": 2.0,
                        "Age": 60,
                        "Gender": "M",
                    }
                ]
            ),
        ]
    )
    suppl = root / "geo/series/GSE14nnn" / GSE / "suppl"
    suppl.mkdir(parents=True)
    (suppl / "GSE14520_Extra_Supplement.txt.gz").write_bytes(gzip_bytes(table.to_csv(sep="\t", index=False)))
    annot = (
        gzip.decompress(
            (demo_mirror / "ftp.ncbi.nlm.nih.gov/geo/platforms/GPL0nnn/GPL0000/annot/GPL0000.annot.gz").read_bytes()
        )
        .decode()
        .splitlines()
    )
    begin = annot.index("!platform_table_begin")
    rows = [line.split("\t") for line in annot[begin + 2 :] if not line.startswith("!")]
    record = platform_record(
        GPL, ["ID", "GB_ACC", "Gene Symbol", "ENTREZ_GENE_ID"], [[r[0], "", r[2], ""] for r in rows]
    )
    planted = {
        "samples": samples,
        "without_row": samples[SAMPLE_WITHOUT_ROW],
        "lower_case": sum(1 for i in range(len(samples)) if i % LOWER_CASE_TISSUE_EVERY == 0),
        "tumours": int(tumour.sum()),
        "normals": int((~tumour).sum()),
        "events": int(status[:SAMPLE_WITHOUT_ROW][tumour[:SAMPLE_WITHOUT_ROW]].sum()),
    }
    return supplement.set_index("Affy_GSM"), {**planted, "platform_record": record}


def replica_config(base: dict, served: LoopbackServer, workdir: Path) -> dict:
    shipped = yaml.safe_load((REPO / "config/cohorts/gse14520.yaml").read_text())["cohorts"]["gse14520"]
    demo_tcga = base["cohorts"]["demo_tcga"]
    comparison = {"name": "tumour_vs_normal", "column": "tissue", "test": "tumor", "reference": "normal"}
    config = {
        **base,
        "demo": {**base["demo"], "enabled": False},
        "mirror": None,
        "results": "results",
        "download": {
            "store": str(workdir / "downloads"),
            "gdc_api": served.gdc_api,
            "gdc_page_size": 20,
            "gdc_batch_files": 25,
            "xena_pancan_hub": served.url + "/pancan",
            "geo_ftp": served.url + "/geo",
            "geo_query": served.url + "/ncbi/geo/query/acc.cgi",
            "geo_download": served.url + "/ncbi/geo/download/",
            "attempts": 2,
            "backoff": 0.1,
        },
        "resources": {**base["resources"], "fetch": False},
        "enrichment": {**base["enrichment"], "permutations": 200},
    }
    # fewer Schoenfeld checks and Kaplan-Meier figures than the demo: the run stays short on 2 cores
    config["cohorts"] = {
        "replica_tcga": {
            **demo_tcga,
            "label": "TCGA-like replica (GDC format, CDR endpoints)",
            "survival_source": "cdr",
        },
        "gse14520": {**shipped, "simulated": True, "label": "GSE14520-shaped replica", "comparisons": [comparison]},
    }
    lasso = {**base["survival"]["lasso"], "discovery": "replica_tcga", "validation": ["gse14520"]}
    config["survival"] = {**base["survival"], "ph_check_top": 5, "plots_top": 2, "lasso": lasso}
    return config


@pytest.fixture(scope="module")
def replica_run(tmp_path_factory: pytest.TempPathFactory):
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    generated = tmp_path_factory.mktemp("replica_demo")
    genes = replica_genes(base)
    with pytest.MonkeyPatch.context() as patch:  # the demo generator on the smaller gene table
        patch.setattr(demo, "demo_genes", lambda: genes)
        truth = demo.write_demo(generated, demo.DemoParameters(**PARAMETERS))
    latent = pd.read_csv(generated / "truth/latent_rnaseq.tsv", sep="\t")
    workdir = tmp_path_factory.mktemp("replica_run")
    root = workdir / "served"
    root.mkdir()
    with LoopbackServer(root) as served:
        served.load_gdc_mirror(generated / "mirror", demo.DEMO_PROJECT)
        cdr = write_cdr(root / "pancan/download" / xena.CDR_DATASET, latent)
        supplement, planted = gse14520_replica(generated / "mirror", root)
        served.geo_platform_records[GPL] = planted.pop("platform_record")
        shutil.copytree(REPO / "config", workdir / "config")
        config = replica_config(base, served, workdir)
        (workdir / "replica.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        run_snakemake(workdir, "--configfile", str(workdir / "replica.yaml"))
        queries = list(served.geo_queries)
        gdc_posts = [p for m, p, _ in served.requests if m == "POST"]
    return {
        "dir": workdir / "results",
        "truth": truth,
        "cdr": cdr,
        "supplement": supplement,
        "planted": planted,
        "latent": latent,
        "geo_queries": queries,
        "gdc_posts": gdc_posts,
        "generated": generated,
    }


def _html(run, cohort: str) -> str:
    return (run["dir"] / cohort / "report.html").read_text()


def _endpoint_rows(html: str) -> dict[str, tuple[int, int]]:
    """endpoint -> (tumours with data, events) from the cohort section's endpoint table."""
    block = html[html.index("Survival endpoints (tumours)") : html.index("Clinical variables (tumours)")]
    # columns: endpoint, where it comes from (time / event, unit), tumours with data, events, median follow-up
    rows = re.findall(r"<tr>\s*<td>([A-Z]+)</td>\s*<td>[^<]*</td>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)</td>", block)
    return {e: (int(n), int(k)) for e, n, k in rows}


def test_gdc_replica_was_fetched_through_the_api(replica_run):
    import anndata as ad

    posts = replica_run["gdc_posts"]
    n_files = replica_run["truth"]["gdc"]["samples"]
    assert posts.count("/gdcapi/files") == -(-n_files // 20)  # sorted paging, 20 hits a page
    assert posts.count("/gdcapi/data") == -(-n_files // 25)  # tar batches with MANIFEST.txt
    cohort = ad.read_h5ad(replica_run["dir"] / "replica_tcga/cohort.h5ad")
    assert cohort.uns["provenance"]["release"] == "Data Release 99.0 (loopback)"
    assert (cohort.obs["tissue"] == "tumor").sum() == PARAMETERS["n_tumor"]
    assert (cohort.obs["tissue"] == "normal").sum() == PARAMETERS["n_normal"]


def test_gdc_cohort_section_shows_cdr_endpoints_and_the_diagnosis_rule(replica_run):
    html = _html(replica_run, "replica_tcga")
    cdr = replica_run["cdr"].copy()
    endpoints = ["OS", "DSS", "DFI", "PFI"]
    cdr.loc[cdr["Redaction"] == "Redacted", endpoints + [f"{e}.time" for e in endpoints]] = np.nan
    rows = _endpoint_rows(html)
    assert set(rows) == {"OS", "DSS", "DFI", "PFI"}
    for endpoint in rows:
        known = cdr[endpoint].notna() & cdr[f"{endpoint}.time"].notna()
        assert rows[endpoint] == (int(known.sum()), int(cdr.loc[known, endpoint].sum())), endpoint
    assert "TCGA-CDR" in html
    # the primary diagnosis found by its flag, for the cases whose recurrence record comes first
    first = -(-PARAMETERS["n_tumor"] // demo.MULTI_DIAGNOSIS_EVERY)
    rules = html[html.index("Harmonisation rules that changed the data") :]
    flagged = re.search(r"the record with diagnosis_is_primary_disease == true</td>\s*<td[^>]*>(\d+)</td>", rules)
    assert flagged and int(flagged.group(1)) == first
    assert "2 clinical records match no expression sample: TCGA-ZZ-9000, TCGA-ZZ-9001" in html


def test_gse14520_replica_harmonised_from_matrix_supplement_and_acc_cgi(replica_run):
    import anndata as ad

    planted, supplement = replica_run["planted"], replica_run["supplement"]
    cohort = ad.read_h5ad(replica_run["dir"] / "gse14520/cohort.h5ad")
    # the platform came from acc.cgi (the server has no .annot for it)
    assert cohort.uns["provenance"]["platform_annotation"] == f"{GPL}.soft"
    assert {"targ": "self", "acc": GPL, "form": "text", "view": "full"} in replica_run["geo_queries"]
    assert list(cohort.obs_names) == planted["samples"]
    assert (cohort.obs["tissue"] == "tumor").sum() == planted["tumours"]
    assert (cohort.obs["tissue"] == "normal").sum() == planted["normals"]
    record = cohort.uns["harmonisation"]
    merged = {k: list(v) for k, v in record["characteristics_key_spellings_merged"].items()}
    assert merged == {"tissue": ["tissue", "Tissue"]}
    table = record["sample_table"]
    assert table["samples_matched"] == len(planted["samples"]) - 1
    assert list(table["samples_without_row"]) == [planted["without_row"]]
    assert list(table["rows_without_sample"]) == [EXTRA_ROW]
    with_row = cohort.obs_names[cohort.obs_names != planted["without_row"]]
    months = supplement.loc[with_row, "Survival months"].to_numpy()
    assert np.allclose(cohort.obs.loc[with_row, "OS.time"], months * 365.25 / 12)  # days from months
    assert np.isnan(cohort.obs.loc[planted["without_row"], "OS.time"])
    html = _html(replica_run, "gse14520")
    assert EXTRA_ROW in html and planted["without_row"] in html
    assert "GSE14520_Extra_Supplement.txt.gz" in html
    # both endpoints of the shipped config, from the supplement: OS and recurrence-free survival (Recurr*)
    rows = _endpoint_rows(html)
    assert rows["OS"] == (planted["tumours"], planted["events"])
    tumours_with_row = [s for s in with_row if cohort.obs.at[s, "tissue"] == "tumor"]
    assert rows["RFS"] == (rows["OS"][0], int(supplement.loc[tumours_with_row, "Recurr status"].sum()))
    assert set(rows) == {"OS", "RFS"}
    assert np.allclose(
        cohort.obs.loc[with_row, "RFS.time"], supplement.loc[with_row, "Recurr months"].to_numpy() * 365.25 / 12
    )
    assert "characteristics key spellings [&#39;tissue&#39;, &#39;Tissue&#39;] were merged" in html
    assert "characteristics key &#39;note&#39; appears more than once in 1 sample(s)" in html
    assert f"{len(planted['samples']) - 1} samples matched" in html


def test_de_finds_the_planted_genes_in_both_cohorts(replica_run):
    planted = pd.Series(demo.TUMOR_VS_NORMAL)
    strong = planted[planted.abs() >= 1.0]
    for cohort in ("replica_tcga", "gse14520"):
        de = pd.read_csv(replica_run["dir"] / cohort / "de/tumour_vs_normal/de.tsv", sep="\t")
        de = de.set_index("symbol")
        assert de.index.is_unique
        found = de.loc[strong.index]
        significant = found[found["padj"] < 0.05]
        assert len(significant) >= 0.8 * len(strong), (cohort, found[["log2FC", "padj"]])
        assert (np.sign(significant["log2FC"]) == np.sign(strong[significant.index])).all(), cohort
        assert (de["padj"] < 0.05).sum() < 0.5 * len(de), cohort  # not everything is called


def test_survival_tables_give_the_planted_direction(replica_run):
    cdr = replica_run["cdr"]
    counted = cdr[cdr["Redaction"] != "Redacted"]
    for cohort, endpoints in (("replica_tcga", ["OS", "DSS", "DFI", "PFI"]), ("gse14520", ["OS", "RFS"])):
        table = pd.read_csv(replica_run["dir"] / cohort / "survival/survival.tsv", sep="\t")
        assert sorted(table["endpoint"].unique()) == sorted(endpoints), cohort
        rows = table.set_index(["score", "endpoint"])
        for score in ("ferroptosis_core_resistance", "gene__SLC7A11", "gene__GPX4"):
            row = rows.loc[(score, "OS")]
            assert row["hr"] > 1 and row["direction"] == "higher score, higher risk", (cohort, score)
        assert rows.loc[("ferroptosis_core_resistance", "OS"), "p_wald"] < 0.05, cohort
        if cohort == "replica_tcga":  # the table's events are the CDR's, the redacted patient left out
            for endpoint in endpoints:
                known = counted[endpoint].notna()
                assert rows.loc[("gene__GPX4", endpoint), "events"] == counted.loc[known, endpoint].sum(), endpoint
                assert rows.loc[("gene__GPX4", endpoint), "n"] == known.sum(), endpoint


def test_cross_cohort_page_pools_both_cohorts(replica_run):
    meta = pd.read_csv(replica_run["dir"] / "cross_cohort/survival_meta.tsv", sep="\t")
    row = meta.set_index(["endpoint", "score"]).loc[("OS", "ferroptosis_core_resistance")]
    assert row["cohorts"] == 2 and row["same_direction"]
    assert row["hr_replica_tcga"] > 1 and row["hr_gse14520"] > 1
    assert row["meta_hr"] > 1 and row["meta_p"] < 0.05
    pooled = sorted([row["hr_replica_tcga"], row["hr_gse14520"]])
    assert pooled[0] <= row["meta_hr"] <= pooled[1]
    assert set(meta.loc[meta["cohorts"] >= 2, "endpoint"]) == {"OS"}  # only OS is in both cohorts
    html = (replica_run["dir"] / "cross_cohort/report.html").read_text()
    assert "replica_tcga" in html and "gse14520" in html and "ferroptosis_core_resistance" in html


def test_every_stage_of_the_analysis_ran(replica_run):
    for cohort in ("replica_tcga", "gse14520"):
        html = _html(replica_run, cohort)
        for section in ('id="cohort"', 'id="de', 'id="enrichment', 'id="survival', 'id="genes'):
            assert section in html, (cohort, section)
        folder = replica_run["dir"] / cohort / "enrichment/tumour_vs_normal"
        gsea = pd.read_csv(folder / "gsea.tsv", sep="\t").set_index(["collection", "set"])
        suppressors = gsea.loc[("ferroptosis_short", "FERROPTOSIS_CORE_SUPPRESSORS")]  # planted up in tumours
        assert suppressors["NES"] > 0 and suppressors["fdr"] < 0.25, cohort
        collections = pd.read_csv(folder / "collections.tsv", sep="\t").set_index("collection")
        assert collections.loc["ferroptosis_short", "status"] == "run"
        assert "resources.fetch: false" in collections.loc["hallmark", "reason"]  # offline: named, not silent
