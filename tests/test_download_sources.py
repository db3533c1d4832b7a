"""GDC API, UCSC Xena (+ TCGA-CDR) and GEO clients against the loopback server, ending in harmonised cohorts."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DEMO_GEO_MAPPING, REPO
from download_server import (
    LoopbackServer,
    gzip_bytes,
    platform_record,
    series_matrix,
    write_xena_matrix,
    write_xena_table,
    xena_hub_matrix,
)
from test_download_http import quick_client as _quick_client

from ferrostem.demo import DEMO_GPL, DEMO_GSE, DEMO_PROJECT
from ferrostem.download import download_cohort, settings
from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.files import file_digest
from ferrostem.harmonise import harmonise_cohort
from ferrostem.cohort_report import cohort_section
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


# planted in the Xena hub files: one sample whose counts are the mean of two files (odd sums give x.5), and
# list cells for three patients (primary flag, records that agree, ambiguous records)
AVERAGED_SAMPLE_INDEX = 3
LIST_PATIENTS = {"flagged": 0, "agree": 1, "ambiguous": 2}


def _xena_files(demo_rnaseq, raw_gdc: Path, folder: Path, project: str) -> dict[str, object]:
    """Xena GDC-hub files made from the demo's STAR files as the hub ETL writes them; returns what was planted."""
    hits = gdc.load_json_hits(raw_gdc / "files.json")
    sheet = gdc.file_sheet(hits)
    matrix = gdc.merge_star_files(
        [raw_gdc / "data" / r.file_id / r.file_name for r in sheet.itertuples()], list(sheet["file_id"])
    )
    ids = matrix.genes["gene_id"]
    files = list(sheet["file_id"])
    sample_of_file = dict(zip(sheet["file_id"], sheet["sample_id"]))
    counts = pd.DataFrame(matrix.counts, index=ids, columns=files)
    tpm = pd.DataFrame(matrix.tpm, index=ids, columns=files)
    averaged = sheet["sample_id"].iloc[AVERAGED_SAMPLE_INDEX]
    first_file = sheet["file_id"].iloc[AVERAGED_SAMPLE_INDEX]
    second = counts[first_file] + np.arange(len(ids)) % 3  # a second aliquot file of the same sample
    counts["second-aliquot"], tpm["second-aliquot"] = second, tpm[first_file]
    sample_of_file["second-aliquot"] = averaged
    write_xena_matrix(folder / f"{project}.star_counts.tsv.gz", xena_hub_matrix(counts, sample_of_file))
    write_xena_matrix(folder / f"{project}.star_tpm.tsv.gz", xena_hub_matrix(tpm, sample_of_file))
    probemap = pd.DataFrame(
        {"id": ids, "gene": matrix.genes["gene_name"], "chrom": "chr1", "chromStart": 1, "chromEnd": 2, "strand": "+"}
    )
    (folder / xena.PROBEMAP).write_text(probemap.to_csv(sep="\t", index=False))
    obs = demo_rnaseq.obs.astype({"sample_id": str, "patient_id": str, "sex": str, "stage": str})
    write_xena_table(
        folder / f"{project}.survival.tsv.gz",
        pd.DataFrame(
            {"sample": obs["sample_id"], "OS": obs["OS"], "_PATIENT": obs["patient_id"], "OS.time": obs["OS.time"]}
        ),
    )
    clinical = pd.DataFrame(
        {
            "sample": obs["sample_id"],
            "age_at_index.demographic": obs["age"].round(),
            "gender.demographic": obs["sex"],
            "ajcc_pathologic_stage.diagnoses": obs["stage"],
            "diagnosis_is_primary_disease.diagnoses": "True",
            "tumor_grade.diagnoses": "G2",
        }
    )
    patients = list(dict.fromkeys(obs["patient_id"]))
    planted = {
        "averaged_sample": averaged,
        "odd_cells": int(((counts[first_file] + second) % 2 == 1).sum()),
        "averaged_expected": np.floor((counts[first_file] + second) / 2 + 0.5),  # halves round up
        "list_patients": {rule: patients[i] for rule, i in LIST_PATIENTS.items()},
    }
    for rule, patient in planted["list_patients"].items():
        rows = clinical.index[obs["patient_id"].to_numpy() == patient]
        stage, flags, grade = {
            "flagged": (["Stage IIIA", "Stage I"], ["False", "True"], ["G3", "G1"]),
            "agree": (["Stage II", "", "Stage II"], ["", "", ""], ["G2", "G2", ""]),
            "ambiguous": (["Stage IV", "Stage II"], "", ["G1", "G3"]),
        }[rule]
        for row in rows:
            clinical.at[row, "ajcc_pathologic_stage.diagnoses"] = stage
            clinical.at[row, "diagnosis_is_primary_disease.diagnoses"] = flags
            clinical.at[row, "tumor_grade.diagnoses"] = grade
    write_xena_table(folder / f"{project}.clinical.tsv.gz", clinical)
    return planted


def _cdr(demo_rnaseq, code: str) -> pd.DataFrame:
    patients = demo_rnaseq.obs.drop_duplicates("patient_id").astype({"patient_id": str})
    rng = np.random.default_rng(7)
    table = pd.DataFrame(
        {"sample": patients["patient_id"] + "-01", "_PATIENT": patients["patient_id"], "cancer type abbreviation": code}
    )
    for endpoint in ("OS", "DSS", "DFI", "PFI"):
        table[endpoint] = rng.integers(0, 2, len(table))
        table[f"{endpoint}.time"] = rng.integers(30, 3000, len(table))
    table["Redaction"] = ""
    table.loc[table.index[0], "Redaction"] = "Redacted"
    other = table.head(3).assign(
        **{"cancer type abbreviation": "BRCA", "_PATIENT": ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"]}
    )
    return pd.concat([table, other])


def test_xena_cohort_with_cdr_survival(served: LoopbackServer, demo_dir: Path, demo_rnaseq, tmp_path: Path):
    project = "TCGA-DEMO"
    hub = served.root / "hub" / "download"
    planted = _xena_files(demo_rnaseq, demo_dir / "gdc", hub, project)
    cdr = _cdr(demo_rnaseq, "DEMO")
    (served.root / "pancan" / "download").mkdir(parents=True)
    (served.root / "pancan" / "download" / xena.CDR_DATASET).write_text(cdr.to_csv(sep="\t", index=False))
    client = quick_client(tmp_path / "store")
    raw = xena.download_cohort(client, project, tmp_path / "raw", served.url + "/hub")
    cdr_path = xena.download_cdr(client, tmp_path / "cdr.tsv", served.url + "/pancan")
    cohort = {"source": "xena", "project": project, "survival_source": "cdr"}
    adata = harmonise_cohort(cohort, raw, cdr_path)
    harmonisation = adata.uns["harmonisation"]
    assert harmonisation["counts_back_transformed"] is True
    # the averaged sample: x.5 cells counted, rounded (halves up), named; the layer says hub-averaged
    averaged = planted["averaged_sample"]
    rounding = harmonisation["counts_rounding"]
    assert list(rounding["samples_with_averaged_counts"]) == [averaged]
    assert rounding["non_integer_samples"] == 1 and rounding["non_integer_cells"] == planted["odd_cells"] > 0
    assert rounding["max_rounding"] == pytest.approx(0.5)
    assert adata.uns["layer_scales"]["counts"].startswith("hub-averaged counts")
    assert adata.uns["provenance"]["counts_rounding"]["non_integer_cells"] == planted["odd_cells"]
    assert any("hub-averaged counts" in w and averaged in w for w in harmonisation["warnings"])
    genes = demo_rnaseq.var_names
    common = adata.obs_names.intersection(demo_rnaseq.obs_names)
    assert len(common) == demo_rnaseq.n_obs
    single = common.drop(averaged)
    assert np.array_equal(adata[single, genes].layers["counts"], demo_rnaseq[single, genes].layers["counts"])
    expected = planted["averaged_expected"].rename(lambda g: g.split(".")[0])
    expected = expected[~expected.index.duplicated(keep=False)].reindex(adata.var["gene_id"]).to_numpy()
    compared = ~np.isnan(expected)
    assert compared.mean() > 0.9
    assert np.array_equal(np.asarray(adata[averaged].layers["counts"][0])[compared], expected[compared])
    # list cells: the primary record's element, agreeing records, ambiguous -> missing and named
    by_patient = adata.obs.drop_duplicates("patient_id").set_index("patient_id")
    listed = planted["list_patients"]
    assert (
        by_patient.loc[listed["flagged"], "stage"] == "Stage I" and by_patient.loc[listed["flagged"], "grade"] == "G1"
    )
    assert by_patient.loc[listed["agree"], "stage"] == "Stage II" and by_patient.loc[listed["agree"], "grade"] == "G2"
    assert pd.isna(by_patient.loc[listed["ambiguous"], "stage"]) and pd.isna(
        by_patient.loc[listed["ambiguous"], "grade"]
    )
    stage_lists = harmonisation["clinical_list_cells"]["stage"]
    assert stage_lists["list_cells"] == 3 and stage_lists["by_diagnosis_is_primary_disease"] == 1
    assert stage_lists["records_agree"] == 1 and list(stage_lists["ambiguous_patients"]) == [listed["ambiguous"]]
    assert any("ambiguous (set missing) for 1" in w and listed["ambiguous"] in w for w in harmonisation["warnings"])
    adata.write_h5ad(tmp_path / "cohort.h5ad")  # the new uns records are storable
    section = cohort_section(ad.read_h5ad(tmp_path / "cohort.h5ad"), "xena")  # what the report shows
    assert "counts: hub-averaged counts" in section.context["facts"]["layers"]
    assert any("hub-averaged counts" in w for w in section.warnings)
    assert any("several diagnosis records for stage" in w for w in section.warnings)
    by_patient = cdr.set_index("_PATIENT")
    redacted = by_patient.index[0]
    for endpoint in ("DSS", "PFI.time"):
        expected = adata.obs["patient_id"].astype(str).map(by_patient[endpoint]).astype(float)
        expected[adata.obs["patient_id"].astype(str) == redacted] = np.nan
        assert np.allclose(adata.obs[endpoint], expected, equal_nan=True)
    assert "TCGA-CDR" in adata.uns["harmonisation"]["survival_source"]
    # the same CDR joins onto the GDC cohort when configured
    gdc_cohort = harmonise_cohort(
        {"source": "gdc", "project": project, "simulated": True, "survival_source": "cdr"}, demo_dir / "gdc", cdr_path
    )
    assert np.allclose(
        gdc_cohort.obs["DFI"],
        gdc_cohort.obs["patient_id"]
        .astype(str)
        .map(by_patient["DFI"])
        .where(gdc_cohort.obs["patient_id"].astype(str) != redacted)
        .astype(float),
        equal_nan=True,
    )


def test_xena_duplicate_ensembl_ids_are_an_error(tmp_path: Path):
    path = tmp_path / "TCGA-X.star_counts.tsv.gz"
    path.write_bytes(gzip_bytes("Ensembl_ID\tTCGA-AA-0001-01A\nENSG1.1\t1.0\nENSG2.1\t2.0\nENSG1.1\t3.0\n"))
    with pytest.raises(InputFormatError, match=r"star_counts.*duplicate Ensembl_ID.*ENSG1\.1"):
        xena.read_matrix(path)


def _geo_layout(served: LoopbackServer, demo_dir: Path, annot: bool = True) -> int:
    """The demo series on the server; without `annot`, its platform as an acc.cgi record.

    Returns the platform's rows."""
    geo_root = served.root / "geo"
    shutil.copytree(demo_dir / "mirror" / "ftp.ncbi.nlm.nih.gov" / "geo", geo_root)
    platform_dir = geo_root / "platforms" / "GPL0nnn" / DEMO_GPL
    if not annot:  # no .annot (404): the platform is reachable only through acc.cgi, as the submitter wrote it
        annot_file = platform_dir / "annot" / f"{DEMO_GPL}.annot.gz"
        lines = gzip.decompress(annot_file.read_bytes()).decode().splitlines()
        annot_file.unlink()
        begin = lines.index("!platform_table_begin")
        rows = [line.split("\t") for line in lines[begin + 2 :] if not line.startswith("!")]
        served.geo_platform_records[DEMO_GPL] = platform_record(
            DEMO_GPL, ["ID", "GB_ACC", "Gene Symbol", "ENTREZ_GENE_ID"], [[r[0], "", r[2], r[3]] for r in rows]
        )
        # the family SOFT (every sample's table too) is there, as on GEO, and must never be fetched
        (platform_dir / "soft").mkdir()
        (platform_dir / "soft" / f"{DEMO_GPL}_family.soft.gz").write_bytes(gzip_bytes(f"^PLATFORM = {DEMO_GPL}\n"))
        return len(rows)
    return 0


@pytest.mark.parametrize("annot", [True, False])
def test_geo_series_over_http(served: LoopbackServer, demo_dir: Path, demo_array, tmp_path: Path, annot: bool):
    platform_rows = _geo_layout(served, demo_dir, annot)
    client = quick_client(tmp_path / "store")
    query = served.url + "/ncbi/geo/query/acc.cgi"
    raw = geo.download_series(client, DEMO_GSE, tmp_path / "raw", base=served.url + "/geo", query=query)
    adata = harmonise_cohort({"source": "geo", "accession": DEMO_GSE, "simulated": True, "geo": DEMO_GEO_MAPPING}, raw)
    assert np.allclose(adata.X, demo_array.X) and list(adata.var_names) == list(demo_array.var_names)
    assert served.count(f"/geo/platforms/GPL0nnn/{DEMO_GPL}/annot/{DEMO_GPL}.annot.gz") == 1
    assert served.count(f"/geo/platforms/GPL0nnn/{DEMO_GPL}/soft/{DEMO_GPL}_family.soft.gz") == 0
    record = json.loads((raw / "download.json").read_text())["annotations"][0]
    stored = raw / record["file"]
    assert record["sha256"] == file_digest(stored) == adata.uns["provenance"]["input_sha256"][record["file"]]
    if annot:
        assert record["file"] == f"{DEMO_GPL}.annot.gz" and not served.geo_queries
        return
    assert served.geo_queries == [{"targ": "self", "acc": DEMO_GPL, "form": "text", "view": "full"}]
    assert record["file"] == f"{DEMO_GPL}.soft" and record["rows"] == platform_rows > 0
    assert "no published checksum" in record["kind"]
    assert adata.uns["provenance"]["platform_annotation"] == f"{DEMO_GPL}.soft"
    # stored under its query, so another platform's record cannot take its place; a rerun asks nothing
    assert (
        tmp_path / "store" / "127.0.0.1" / "ncbi/geo/query/acc.cgi" / f"acc={DEMO_GPL}&form=text&targ=self&view=full"
    ).is_file()
    geo.download_series(client, DEMO_GSE, tmp_path / "raw2", base=served.url + "/geo", query=query)
    assert len(served.geo_queries) == 1


def test_geo_incomplete_platform_record_is_not_kept(served: LoopbackServer, demo_dir: Path, tmp_path: Path):
    _geo_layout(served, demo_dir, annot=False)
    complete = served.geo_platform_records[DEMO_GPL]
    served.geo_platform_records[DEMO_GPL] = complete.replace("!platform_table_end\n", "")
    client = quick_client(tmp_path / "store")
    query = served.url + "/ncbi/geo/query/acc.cgi"
    with pytest.raises(
        InputFormatError,
        match=rf"acc.cgi\?targ=self&acc={DEMO_GPL}.*not a complete platform record "
        r".*truncated.*run again",
    ):
        geo.download_series(client, DEMO_GSE, tmp_path / "raw", base=served.url + "/geo", query=query)
    served.geo_platform_records[DEMO_GPL] = complete
    raw = geo.download_series(client, DEMO_GSE, tmp_path / "raw", base=served.url + "/geo", query=query)
    assert geo.verify_platform_record(raw / f"{DEMO_GPL}.soft", DEMO_GPL) > 0
    del served.geo_platform_records[DEMO_GPL]  # GEO's answer for an unknown accession is a page, not a record
    with pytest.raises(InputFormatError, match=r"not a complete platform record of GPL0000.*no !platform_table_begin"):
        geo.download_series(
            quick_client(tmp_path / "store2"), DEMO_GSE, tmp_path / "raw3", base=served.url + "/geo", query=query
        )


def test_geo_mixed_case_and_repeated_keys_over_http(served: LoopbackServer, tmp_path: Path):
    """A GSE14520-shaped series: `Tissue:`/`tissue:` mixed, a key repeated in one sample, probe ids in another
    case than the platform's, and the shipped config's characteristics keys."""
    gse, gpl = "GSE14520", "GPL3921"
    samples = [f"GSM36{i:04d}" for i in range(6)]
    tissues = ["Liver Tumor Tissue", "Liver Non-Tumor Tissue"] * 3
    characteristics = [
        [f"{'Tissue' if i % 3 else 'tissue'}: {t}" for i, t in enumerate(tissues)],
        [f"Individual: P{i // 2}" for i in range(6)],
        ["note: a", "", "", "", "", ""],
        ["note: b", "", "", "", "", ""],
    ]
    rng = np.random.default_rng(3)
    table = {probe: list(np.round(rng.normal(8, 1, 6), 3)) for probe in ["1007_S_AT", "1053_at", "117_at"]}
    matrix_dir = served.root / "geo" / "series" / "GSE14nnn" / gse / "matrix"
    matrix_dir.mkdir(parents=True)
    (matrix_dir / f"{gse}-{gpl}{geo.MATRIX_SUFFIX}").write_bytes(
        gzip_bytes(series_matrix(gse, gpl, samples, characteristics, table))
    )
    (matrix_dir / f"{gse}-GPL571{geo.MATRIX_SUFFIX}").write_bytes(
        gzip_bytes(series_matrix(gse, "GPL571", samples[:1], [], {}))
    )
    served.geo_platform_records[gpl] = platform_record(
        gpl,
        ["ID", "Gene Symbol", "ENTREZ_GENE_ID"],
        [
            ["1007_s_at", "DDR1 /// MIR4640", "780 /// 100616237"],
            ["1053_at", "RFC2", "5982"],
            ["117_at", "HSPA6", "3310"],
        ],
    )
    suppl = served.root / "geo" / "series" / "GSE14nnn" / gse / "suppl"
    suppl.mkdir(parents=True)
    supplement = (
        "Affy_GSM\tTissue Type\tSurvival status\tSurvival months\tRecurr status\tRecurr months\tAge\tGender\n"
        + "".join(
            f"{s}\t{'Non-Tumor' if i % 2 else 'Tumor'}\t{i % 3 == 0:d}\t{12.0 + i}\t0\t{12.0 + i}\t{50 + i}\t"
            f"{'M' if i < 3 else 'F'}\n"
            for i, s in enumerate(samples[:5])
        )
        + "GSM999999\tTumor\t1\t3.0\t1\t3.0\t60\tM\n"
    )  # a GPL571 sample: not in this matrix
    (suppl / "GSE14520_Extra_Supplement.txt.gz").write_bytes(gzip_bytes(supplement))
    shipped = yaml.safe_load((REPO / "config/cohorts/gse14520.yaml").read_text())["cohorts"]["gse14520"]
    cohort = {
        **shipped,
        "geo": {**shipped["geo"], "fields": {**shipped["geo"]["fields"], "patient_id": "individual"}},
        "harmonise": {"multi_symbol_probes": "split"},
    }
    download = settings(
        {
            "download": {
                "store": str(tmp_path / "store"),
                "geo_ftp": served.url + "/geo",
                "geo_query": served.url + "/geo/query/acc.cgi",
            }
        }
    )
    raw = download_cohort(cohort, download, tmp_path / "raw", quick_client(tmp_path / "store"))
    adata = harmonise_cohort(cohort, raw)
    assert adata.obs["tissue"].tolist() == ["tumor", "normal"] * 3
    assert adata.obs["patient_id"].tolist() == [f"P{i // 2}" for i in range(6)]
    assert adata.obs["OS"].tolist()[:5] == [1.0, 0.0, 0.0, 1.0, 0.0] and np.isnan(adata.obs["OS"].iloc[5])
    assert adata.obs["OS.time"].iloc[4] == pytest.approx(16.0 * 365.25 / 12)
    assert adata.obs["age"].tolist()[:2] == [50, 51] and adata.obs["sex"].astype(str).tolist()[2:4] == ["M", "F"]
    record = adata.uns["harmonisation"]
    table_record = record["sample_table"]
    assert table_record["samples_matched"] == 5 and list(table_record["samples_without_row"]) == [samples[5]]
    assert list(table_record["rows_without_sample"]) == ["GSM999999"]
    assert "GSE14520_Extra_Supplement.txt.gz" in adata.uns["provenance"]["input_sha256"]
    assert record["characteristics_key_spellings_merged"] == {"tissue": ["tissue", "Tissue"]}
    assert record["probes_matched_ignoring_case"] == 1
    assert sorted(adata.var_names) == ["DDR1", "HSPA6", "MIR4640", "RFC2"]
    assert np.allclose(adata[:, "DDR1"].X.ravel(), table["1007_S_AT"], atol=1e-4)
    warnings = list(record["warnings"])
    assert any("'note'" in w and "joined" in w for w in warnings)
    assert any("ignoring case" in w for w in warnings)
    assert any("GSM999999" in w and "not samples of this series" in w for w in warnings)


def test_geo_missing_characteristics_key_lists_keys_found(demo_dir: Path):
    mapping = {**DEMO_GEO_MAPPING, "fields": {**DEMO_GEO_MAPPING["fields"], "OS.time": "overall survival (months)"}}
    with pytest.raises(ConfigError, match=r"'overall survival \(months\)'.*keys found.*survival months"):
        harmonise_cohort({"source": "geo", "accession": DEMO_GSE, "geo": mapping}, demo_dir / "geo")


def test_geo_empty_series_table(tmp_path: Path):
    text = (
        '!Series_geo_accession\t"GSE1"\n!Sample_geo_accession\t"GSM1"\t"GSM2"\n'
        '!Sample_characteristics_ch1\t"tissue: tumor"\t"tissue: normal"\n!series_matrix_table_begin\n'
        '"ID_REF"\t"GSM1"\t"GSM2"\n!series_matrix_table_end\n'
    )
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    path.write_bytes(gzip_bytes(text))
    with pytest.raises(InputFormatError, match=r"GSE1_series_matrix.*table is empty.*rnaseq_counts"):
        geo.read_series_matrix(path)
    assert geo.read_series_matrix(path, require_table=False).samples["tissue"].tolist() == ["tumor", "normal"]


def _rnaseq_series(served: LoopbackServer, gse: str, counts: dict[str, str]) -> dict[str, object]:
    matrix = (
        f'!Series_geo_accession\t"{gse}"\n!Series_platform_id\t"GPL20301"\n!Sample_geo_accession\t"GSM1"\t"GSM2"\n'
        '!Sample_characteristics_ch1\t"tissue: tumor"\t"Tissue: normal"\n!series_matrix_table_begin\n'
        '"ID_REF"\t"GSM1"\t"GSM2"\n!series_matrix_table_end\n'
    )
    matrix_dir = served.root / "geo" / "series" / "GSEnnn" / gse / "matrix"
    matrix_dir.mkdir(parents=True)
    (matrix_dir / f"{gse}_series_matrix.txt.gz").write_bytes(gzip_bytes(matrix))
    ncbi = served.root / "ncbi" / "geo" / "download"
    ncbi.mkdir(parents=True, exist_ok=True)
    for name, text in counts.items():
        (ncbi / name).write_bytes(gzip_bytes(text))
    return {"source": "geo", "accession": gse, "geo": {"rnaseq_counts": True, "fields": {"tissue": "tissue"}}}


HUMAN_ANNOTATION = (
    "GeneID\tSymbol\tGeneType\tEnsemblGeneID\n2879\tGPX4\tprotein-coding\tENSG00000167468\n"
    "6520\tSLC3A2\tprotein-coding\tENSG00000168003\n1\tA1BG\tprotein-coding\tENSG00000121410\n"
)


def test_geo_ncbi_rnaseq_counts_found_by_the_download_page(served: LoopbackServer, tmp_path: Path):
    gse = "GSE1"
    cohort = _rnaseq_series(
        served,
        gse,
        {
            f"{gse}_raw_counts_GRCh38.p14_NCBI.tsv.gz": "GeneID\tGSM1\tGSM2\tGSM9\n2879\t100\t50\t1\n6520\t30\t60\t1\n1\t5\t5\t1\n",  # noqa: E501 (a message or record quoted whole)
            f"{gse}_norm_counts_TPM_GRCh38.p14_NCBI.tsv.gz": "GeneID\tGSM1\tGSM2\n2879\t1.5\t2.5\n",
            "Human.GRCh38.p14.annot.tsv.gz": HUMAN_ANNOTATION,
            "Human.GRCh38.p13.annot.tsv.gz": HUMAN_ANNOTATION.replace("GPX4", "WRONG"),
        },
    )
    download = settings(
        {
            "download": {
                "store": str(tmp_path / "store"),
                "geo_ftp": served.url + "/geo",
                "geo_download": served.url + "/ncbi/geo/download/",
            }
        }
    )
    raw = download_cohort(cohort, download, tmp_path / "raw", quick_client(tmp_path / "store"))
    assert {"acc": gse} in served.geo_queries
    record = json.loads((raw / "download.json").read_text())["ncbi_counts"]
    assert (record["build"], record["species"]) == ("GRCh38.p14", "Human")
    assert record["counts"] == f"{gse}_raw_counts_GRCh38.p14_NCBI.tsv.gz"
    assert served.count(f"/ncbi/geo/download/{gse}_norm_counts_TPM_GRCh38.p14_NCBI.tsv.gz") == 0
    adata = harmonise_cohort(cohort, raw)
    assert adata.uns["assay"] == "rnaseq"
    assert adata["GSM1", "GPX4"].layers["counts"][0, 0] == 100
    assert adata.var.loc["SLC3A2", "gene_id"] == "ENSG00000168003" and adata.var.loc["GPX4", "entrez"] == "2879"
    assert adata.obs["tissue"].tolist() == ["tumor", "normal"]
    assert adata.uns["provenance"]["genome_build"] == "GRCh38.p14"
    assert list(adata.uns["harmonisation"]["count_columns_not_in_series"]) == ["GSM9"]


def test_geo_series_without_ncbi_counts_is_named(served: LoopbackServer, tmp_path: Path):
    cohort = _rnaseq_series(served, "GSE2", {})
    download = settings(
        {
            "download": {
                "store": str(tmp_path / "store"),
                "geo_ftp": served.url + "/geo",
                "geo_download": served.url + "/ncbi/geo/download/",
            }
        }
    )
    with pytest.raises(ConfigError, match=r"GSE2: NCBI has no generated RNA-seq counts.*download/\?acc=GSE2"):
        download_cohort(cohort, download, tmp_path / "raw", quick_client(tmp_path / "store"))


def test_geo_mouse_ncbi_counts_are_refused(served: LoopbackServer, tmp_path: Path):
    cohort = _rnaseq_series(
        served,
        "GSE3",
        {
            "GSE3_raw_counts_GRCm39_NCBI.tsv.gz": "GeneID\tGSM1\tGSM2\n1\t1\t1\n",
            "Mouse.GRCm39.annot.tsv.gz": "GeneID\tSymbol\n1\tGpx4\n",
        },
    )
    download = settings(
        {
            "download": {
                "store": str(tmp_path / "store"),
                "geo_ftp": served.url + "/geo",
                "geo_download": served.url + "/ncbi/geo/download/",
            }
        }
    )
    with pytest.raises(ConfigError, match=r"GSE3: NCBI's counts are for Mouse \(GRCm39.*only human series"):
        download_cohort(cohort, download, tmp_path / "raw", quick_client(tmp_path / "store"))
    assert served.count("/ncbi/geo/download/GSE3_raw_counts_GRCm39_NCBI.tsv.gz") == 0
