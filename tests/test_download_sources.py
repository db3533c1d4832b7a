"""GDC API, UCSC Xena (+ TCGA-CDR) and GEO clients against the loopback server, ending in harmonised cohorts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_GEO_MAPPING
from download_server import LoopbackServer, gzip_bytes
from test_download_http import quick_client as _quick_client

from ferrostem.demo import DEMO_GPL, DEMO_GSE, DEMO_PROJECT
from ferrostem.download import download_cohort, settings
from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.harmonise import harmonise_cohort
from ferrostem.sources import gdc, geo, xena


def quick_client(store: Path):
    return _quick_client(store, read_timeout=10.0)  # the loopback server gzips tar batches on the fly


@pytest.fixture()
def served(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    with LoopbackServer(root) as srv:
        yield srv


def test_gdc_api_paging_batches_and_release(served: LoopbackServer, demo_dir: Path, demo_rnaseq, tmp_path: Path):
    served.load_gdc_mirror(demo_dir / "mirror", DEMO_PROJECT)
    first = served.gdc_files[0]["file_id"]
    served.faults["/gdcapi/data"] = ["503"]  # the first batch is refused once
    served.faults[f"/gdcapi/data/{first}"] = []
    client = quick_client(tmp_path / "store")
    raw = gdc.download_project(client, DEMO_PROJECT, tmp_path / "raw", served.gdc_api, page_size=40, batch_files=50)
    posts = [p for m, p, _ in served.requests if m == "POST" and p == "/gdcapi/files"]
    assert len(posts) == -(-len(served.gdc_files) // 40)  # every page asked for once
    assert served.count("/gdcapi/data") == 1 + -(-len(served.gdc_files) // 50)
    adata = harmonise_cohort({"source": "gdc", "project": DEMO_PROJECT, "simulated": True}, raw)
    assert adata.uns["provenance"]["release"] == "Data Release 99.0 (loopback)"
    assert (adata.obs_names.sort_values() == demo_rnaseq.obs_names.sort_values()).all()  # API order: by file_id
    assert np.array_equal(adata[demo_rnaseq.obs_names].layers["counts"], demo_rnaseq.layers["counts"])
    # a second run finds every file verified in the store: queries only, no /data request
    before = len([p for _, p, _ in served.requests if p.startswith("/gdcapi/data")])
    gdc.download_project(client, DEMO_PROJECT, tmp_path / "raw2", served.gdc_api, page_size=40, batch_files=50)
    assert len([p for _, p, _ in served.requests if p.startswith("/gdcapi/data")]) == before


def test_gdc_batch_with_bad_member_falls_back_to_single_files(served: LoopbackServer, demo_dir: Path, tmp_path: Path):
    served.load_gdc_mirror(demo_dir / "mirror", DEMO_PROJECT)
    served.gdc_files = served.gdc_files[:6]
    victim = served.gdc_files[2]
    good = served.gdc_data[victim["file_id"]]
    served.gdc_data[victim["file_id"]] = good[:-10] + b"0" * 10  # wrong md5 inside the tar
    client = quick_client(tmp_path / "store")
    with pytest.raises(Exception, match=victim["file_id"]):  # the single fetch serves the same bad bytes
        gdc.download_project(client, DEMO_PROJECT, tmp_path / "raw", served.gdc_api, batch_files=10)
    served.gdc_data[victim["file_id"]] = good
    gdc.download_project(client, DEMO_PROJECT, tmp_path / "raw", served.gdc_api, batch_files=10)
    assert (tmp_path / "raw" / "data" / victim["file_id"] / victim["file_name"]).read_bytes() == good


def _xena_files(demo_rnaseq, raw_gdc: Path, folder: Path, project: str) -> None:
    """Xena GDC-hub files made from the demo's STAR files (log2(x+1) as the hub stores them)."""
    hits = gdc.load_json_hits(raw_gdc / "files.json")
    sheet = gdc.file_sheet(hits)
    matrix = gdc.merge_star_files([raw_gdc / "data" / r.file_id / r.file_name for r in sheet.itertuples()],
                                  list(sheet["sample_id"] + "-" + sheet["file_id"].str[:4]))
    keep = ~sheet["sample_id"].duplicated().to_numpy()
    samples = sheet["sample_id"][keep].tolist()
    ids = matrix.genes["gene_id"]
    counts = pd.DataFrame(np.log2(matrix.counts[:, keep] + 1.0), index=ids, columns=samples)
    tpm = pd.DataFrame(np.log2(matrix.tpm[:, keep] + 1.0), index=ids, columns=samples)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, frame in {"star_counts": counts, "star_tpm": tpm}.items():
        frame.index.name = "Ensembl_ID"
        (folder / f"{project}.{kind}.tsv.gz").write_bytes(gzip_bytes(frame.to_csv(sep="\t", float_format="%.10f")))
    probemap = pd.DataFrame({"id": ids, "gene": matrix.genes["gene_name"], "chrom": "chr1", "chromStart": 1,
                             "chromEnd": 2, "strand": "+"})
    (folder / xena.PROBEMAP).write_text(probemap.to_csv(sep="\t", index=False))
    obs = demo_rnaseq.obs.astype({"sample_id": str, "patient_id": str, "sex": str, "stage": str})
    survival = pd.DataFrame({"sample": obs["sample_id"], "OS": obs["OS"], "_PATIENT": obs["patient_id"],
                             "OS.time": obs["OS.time"]})
    (folder / f"{project}.survival.tsv.gz").write_bytes(gzip_bytes(survival.to_csv(sep="\t", index=False)))
    clinical = pd.DataFrame({"sample": obs["sample_id"], "age_at_index.demographic": obs["age"].round(),
                             "gender.demographic": obs["sex"], "ajcc_pathologic_stage.diagnoses": obs["stage"]})
    (folder / f"{project}.clinical.tsv.gz").write_bytes(gzip_bytes(clinical.to_csv(sep="\t", index=False)))


def _cdr(demo_rnaseq, code: str) -> pd.DataFrame:
    patients = demo_rnaseq.obs.drop_duplicates("patient_id").astype({"patient_id": str})
    rng = np.random.default_rng(7)
    table = pd.DataFrame({"sample": patients["patient_id"] + "-01", "_PATIENT": patients["patient_id"],
                          "cancer type abbreviation": code})
    for endpoint in ("OS", "DSS", "DFI", "PFI"):
        table[endpoint] = rng.integers(0, 2, len(table))
        table[f"{endpoint}.time"] = rng.integers(30, 3000, len(table))
    table["Redaction"] = ""
    table.loc[table.index[0], "Redaction"] = "Redacted"
    other = table.head(3).assign(**{"cancer type abbreviation": "BRCA", "_PATIENT": ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"]})
    return pd.concat([table, other])


def test_xena_cohort_with_cdr_survival(served: LoopbackServer, demo_dir: Path, demo_rnaseq, tmp_path: Path):
    project = "TCGA-DEMO"
    hub = served.root / "hub" / "download"
    _xena_files(demo_rnaseq, demo_dir / "gdc", hub, project)
    cdr = _cdr(demo_rnaseq, "DEMO")
    (served.root / "pancan" / "download").mkdir(parents=True)
    (served.root / "pancan" / "download" / xena.CDR_DATASET).write_text(cdr.to_csv(sep="\t", index=False))
    client = quick_client(tmp_path / "store")
    raw = xena.download_cohort(client, project, tmp_path / "raw", served.url + "/hub")
    cdr_path = xena.download_cdr(client, tmp_path / "cdr.tsv", served.url + "/pancan")
    cohort = {"source": "xena", "project": project, "survival_source": "cdr"}
    adata = harmonise_cohort(cohort, raw, cdr_path)
    assert adata.uns["harmonisation"]["counts_back_transformed"] is True
    assert adata.uns["harmonisation"]["counts_max_rounding"] < 1e-3
    common = adata.obs_names.intersection(demo_rnaseq.obs_names)
    assert len(common) == demo_rnaseq.n_obs
    genes = demo_rnaseq.var_names
    assert np.array_equal(adata[common, genes].layers["counts"], demo_rnaseq[common, genes].layers["counts"])
    by_patient = cdr.set_index("_PATIENT")
    redacted = by_patient.index[0]
    for endpoint in ("DSS", "PFI.time"):
        expected = adata.obs["patient_id"].astype(str).map(by_patient[endpoint]).astype(float)
        expected[adata.obs["patient_id"].astype(str) == redacted] = np.nan
        assert np.allclose(adata.obs[endpoint], expected, equal_nan=True)
    assert "TCGA-CDR" in adata.uns["harmonisation"]["survival_source"]
    # the same CDR joins onto the GDC cohort when configured
    gdc_cohort = harmonise_cohort({"source": "gdc", "project": project, "simulated": True, "survival_source": "cdr"},
                                  demo_dir / "gdc", cdr_path)
    assert np.allclose(gdc_cohort.obs["DFI"], gdc_cohort.obs["patient_id"].astype(str).map(by_patient["DFI"])
                       .where(gdc_cohort.obs["patient_id"].astype(str) != redacted).astype(float), equal_nan=True)


def test_xena_duplicate_ensembl_ids_are_an_error(tmp_path: Path):
    path = tmp_path / "TCGA-X.star_counts.tsv.gz"
    path.write_bytes(gzip_bytes("Ensembl_ID\tTCGA-AA-0001-01A\nENSG1.1\t1.0\nENSG2.1\t2.0\nENSG1.1\t3.0\n"))
    with pytest.raises(InputFormatError, match=r"star_counts.*duplicate Ensembl_ID.*ENSG1\.1"):
        xena.read_matrix(path)


def _geo_layout(served: LoopbackServer, demo_dir: Path, annot: bool = True) -> None:
    geo_root = served.root / "geo"
    shutil.copytree(demo_dir / "mirror" / "ftp.ncbi.nlm.nih.gov" / "geo", geo_root)
    if not annot:  # only the platform's full SOFT table, with `Gene Symbol` as submitters write it
        annot_file = geo_root / "platforms" / "GPL0nnn" / DEMO_GPL / "annot" / f"{DEMO_GPL}.annot.gz"
        text = gzip.decompress(annot_file.read_bytes()).decode().replace("\tGene symbol\t", "\tGene Symbol\t")
        annot_file.unlink()
        soft = geo_root / "platforms" / "GPL0nnn" / DEMO_GPL / "soft"
        soft.mkdir()
        (soft / f"{DEMO_GPL}_family.soft.gz").write_bytes(gzip_bytes(f"^PLATFORM = {DEMO_GPL}\n" + text))


@pytest.mark.parametrize("annot", [True, False])
def test_geo_series_over_http(served: LoopbackServer, demo_dir: Path, demo_array, tmp_path: Path, annot: bool):
    _geo_layout(served, demo_dir, annot)
    client = quick_client(tmp_path / "store")
    raw = geo.download_series(client, DEMO_GSE, tmp_path / "raw", base=served.url + "/geo")
    adata = harmonise_cohort({"source": "geo", "accession": DEMO_GSE, "simulated": True, "geo": DEMO_GEO_MAPPING}, raw)
    assert np.allclose(adata.X, demo_array.X) and list(adata.var_names) == list(demo_array.var_names)
    assert served.count(f"/geo/platforms/GPL0nnn/{DEMO_GPL}/annot/{DEMO_GPL}.annot.gz") == 1


def test_geo_missing_characteristics_key_lists_keys_found(demo_dir: Path):
    mapping = {**DEMO_GEO_MAPPING, "fields": {**DEMO_GEO_MAPPING["fields"], "OS.time": "overall survival (months)"}}
    with pytest.raises(ConfigError, match=r"'overall survival \(months\)'.*keys found.*survival months"):
        harmonise_cohort({"source": "geo", "accession": DEMO_GSE, "geo": mapping}, demo_dir / "geo")


def test_geo_empty_series_table(tmp_path: Path):
    text = ('!Series_geo_accession\t"GSE1"\n!Sample_geo_accession\t"GSM1"\t"GSM2"\n'
            '!Sample_characteristics_ch1\t"tissue: tumor"\t"tissue: normal"\n!series_matrix_table_begin\n'
            '"ID_REF"\t"GSM1"\t"GSM2"\n!series_matrix_table_end\n')
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    path.write_bytes(gzip_bytes(text))
    with pytest.raises(InputFormatError, match=r"GSE1_series_matrix.*table is empty.*rnaseq_counts"):
        geo.read_series_matrix(path)
    assert geo.read_series_matrix(path, require_table=False).samples["tissue"].tolist() == ["tumor", "normal"]


def test_geo_ncbi_rnaseq_counts(served: LoopbackServer, tmp_path: Path):
    gse = "GSE1"
    matrix = ('!Series_geo_accession\t"GSE1"\n!Series_platform_id\t"GPL20301"\n!Sample_geo_accession\t"GSM1"\t"GSM2"\n'
              '!Sample_characteristics_ch1\t"tissue: tumor"\t"tissue: normal"\n!series_matrix_table_begin\n'
              '"ID_REF"\t"GSM1"\t"GSM2"\n!series_matrix_table_end\n')
    matrix_dir = served.root / "geo" / "series" / "GSEnnn" / gse / "matrix"
    matrix_dir.mkdir(parents=True)
    (matrix_dir / f"{gse}_series_matrix.txt.gz").write_bytes(gzip_bytes(matrix))
    ncbi = served.root / "ncbi" / "geo" / "download"
    ncbi.mkdir(parents=True)
    (ncbi / f"{gse}_raw_counts_GRCh38.p13_NCBI.tsv.gz").write_bytes(
        gzip_bytes("GeneID\tGSM1\tGSM2\n2879\t100\t50\n6520\t30\t60\n1\t5\t5\n"))
    (ncbi / geo.NCBI_HUMAN_ANNOTATION).write_bytes(gzip_bytes(
        "GeneID\tSymbol\tGeneType\tEnsemblGeneID\n2879\tGPX4\tprotein-coding\tENSG00000167468\n"
        "6520\tSLC3A2\tprotein-coding\tENSG00000168003\n1\tA1BG\tprotein-coding\tENSG00000121410\n"))
    download = settings({"download": {"store": str(tmp_path / "store"), "geo_ftp": served.url + "/geo",
                                      "geo_download": served.url + "/ncbi/geo/download/"}})
    cohort = {"source": "geo", "accession": gse, "geo": {"rnaseq_counts": True, "fields": {"tissue": "tissue"}}}
    raw = download_cohort(cohort, download, tmp_path / "raw", quick_client(tmp_path / "store"))
    adata = harmonise_cohort(cohort, raw)
    assert adata.uns["assay"] == "rnaseq"
    assert adata["GSM1", "GPX4"].layers["counts"][0, 0] == 100
    assert adata.var.loc["SLC3A2", "gene_id"] == "ENSG00000168003" and adata.var.loc["GPX4", "entrez"] == "2879"
    assert adata.obs["tissue"].tolist() == ["tumor", "normal"]
