"""UCSC Xena GDC hub and TCGA-CDR readers: the real excerpts of ../shared/reference/real_formats/xena/ (what
each must yield), and the hub's list-valued clinical cells (xena-GDC-ETL `format_multiple_data`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from download_server import write_xena_table

from ferrostem.cohort import HarmonisationRules, harmonise_genes
from ferrostem.errors import InputFormatError
from ferrostem.sources import gdc, xena

REAL = "real_formats/xena"


# -- real excerpts ---------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_real_star_counts_head_back_transforms_to_integers(shared_reference: Path):
    path = shared_reference / REAL / "TCGA-BRCA.star_counts.head3.tsv"
    matrix = xena.read_matrix(path)
    assert matrix.samples == ["TCGA-D8-A146-01A", "TCGA-AQ-A0Y5-01A", "TCGA-C8-A274-01A", "TCGA-BH-A0BD-01A"]
    assert matrix.ids == ["ENSG00000000003.15", "ENSG00000000005.6", "ENSG00000000419.13"]
    counts, rounding = xena.counts_from_log2(matrix, path)
    assert counts.tolist() == [[3414, 879, 8917, 2071], [210, 9, 0, 102], [2108, 2623, 2908, 1784]]
    assert rounding.max_deviation < 1e-9
    record = rounding.for_samples(matrix.samples)
    assert record["non_integer_cells"] == 0 and record["samples_with_averaged_counts"] == []


@pytest.mark.shared
def test_real_survival_head_gives_os_in_days_per_patient(shared_reference: Path):
    survival = xena.read_survival(shared_reference / REAL / "TCGA-BLCA.survival.head4.tsv")
    assert survival.index.tolist() == ["TCGA-E7-A8O8", "TCGA-GC-A4ZW", "TCGA-E7-A5KE", "TCGA-4Z-AA80"]
    assert survival["OS.time"].tolist() == [13, 15, 17, 19] and survival["OS"].tolist() == [0, 0, 0, 1]


@pytest.mark.shared
def test_real_probemap_head_and_par_y_rows(shared_reference: Path):
    probemap = xena.read_probemap(shared_reference / REAL / "gencode.v36.annotation.gtf.gene.probemap.head8.tsv")
    assert probemap.loc["ENSG00000223972.5", "gene"] == "DDX11L1"
    par = [i for i in probemap.index if i.endswith("_PAR_Y")]
    assert par == ["ENSG00000228572.7_PAR_Y", "ENSG00000182378.14_PAR_Y", "ENSG00000178605.13_PAR_Y"]
    assert probemap.loc[par, "gene"].tolist() == ["AL954722.1", "PLCXD1", "GTPBP6"]
    genes = pd.DataFrame({"gene_id": probemap.index, "gene_name": probemap["gene"].to_numpy(), "gene_type": ""})
    zeros = np.zeros((len(genes), 1))
    frame, _, _, report = harmonise_genes(genes, zeros, zeros, HarmonisationRules())
    assert report.par_y_rows == 3 and report.par_y_rule == "drop"
    assert frame["symbol"].tolist() == [
        "DDX11L1",
        "WASH7P",
        "MIR6859-1",
        "MIR1302-2HG",
        "MIR1302-2",
        "FAM138A",
        "OR4G4P",
    ]


@pytest.mark.shared
def test_real_clinical_columns_hold_every_field_read(shared_reference: Path, tmp_path: Path):
    columns = (shared_reference / REAL / "TCGA-BRCA.clinical.tsv.columns.txt").read_text().split()
    chosen = xena.choose_clinical_columns(columns)
    assert {k: v[0] for k, v in chosen.items()} == {
        "age": "age_at_index.demographic",
        "sex": "gender.demographic",
        "stage": "ajcc_pathologic_stage.diagnoses",
        "grade": "tumor_grade.diagnoses",
    }
    assert "sex_at_birth.demographic" not in columns  # an optional fallback, not required
    # the 2024 files predate DR42's flag: the primary record is found through classification_of_tumor
    assert [c for c, _ in xena.PRIMARY_FLAGS if c in columns] == ["classification_of_tumor.diagnoses"]
    row = dict.fromkeys(columns, "--") | {
        "sample": "TCGA-A1-A0SB-01A",
        "age_at_index.demographic": "70",
        "gender.demographic": "female",
        "ajcc_pathologic_stage.diagnoses": ["Stage IIIA", "Stage I"],
        "tumor_grade.diagnoses": ["G3", ""],
        "classification_of_tumor.diagnoses": ["Recurrence", "primary"],
    }
    write_xena_table(tmp_path / "TCGA-BRCA.clinical.tsv.gz", pd.DataFrame([row], columns=columns))
    clinical, report = xena.read_clinical(tmp_path / "TCGA-BRCA.clinical.tsv.gz")
    patient = clinical.loc["TCGA-A1-A0SB"]
    assert patient["age"] == 70 and patient["sex"] == "female" and patient["stage"] == "Stage I"
    assert pd.isna(patient["grade"])  # the primary record's grade is empty: missing, not the recurrence's G3
    assert report["clinical_list_cells"]["stage"]["by_classification_of_tumor"] == 1
    assert report["clinical_fields_missing"] == []


@pytest.mark.shared
def test_real_rna_template_says_the_hub_averages_aliquots(shared_reference: Path):
    text = (shared_reference / REAL / "template.rna.meta.json").read_text()
    wrangling = json.loads(text.split('"wrangling_procedure":', 1)[1].split(",\n", 1)[0])
    assert "is averaged" in wrangling and "log2(x+1)" in wrangling
    assert '":probeMap":"gencode.v36.annotation.gtf.gene.probemap"' in text.replace(" ", "")
    assert xena.PROBEMAP == "gencode.v36.annotation.gtf.gene.probemap"
    assert "log2(count+1)" in text  # the unit of star_counts, which counts_from_log2 inverts


@pytest.mark.shared
def test_real_xenadata_rows_match_the_dataset_names(shared_reference: Path):
    rows = pd.read_csv(
        shared_reference / REAL / "UCSCXenaTools_XenaData_TCGA-LIHC_and_CDR_rows.tsv",
        sep="\t",
        dtype=str,
        keep_default_na=False,
    ).set_index("XenaDatasets")
    for kind, name in xena.dataset_names("TCGA-LIHC").items():
        assert name.removesuffix(".gz") in rows.index, kind  # the hub serves the gzipped bytes under `.gz`
    assert rows.loc["TCGA-LIHC.star_counts.tsv", "Unit"] == "log2(count+1)"
    assert rows.loc["TCGA-LIHC.star_tpm.tsv", "Unit"] == "log2(tpm+1)"
    assert rows.loc["TCGA-LIHC.star_counts.tsv", "ProbeMap"] == xena.PROBEMAP
    # clinical and survival are per sample and list more samples than the matrices (harmonise joins by patient)
    samples = rows["SampleCount"].astype(int)
    assert (samples["TCGA-LIHC.star_counts.tsv"], samples["TCGA-LIHC.star_tpm.tsv"]) == (424, 424)
    assert (samples["TCGA-LIHC.clinical.tsv"], samples["TCGA-LIHC.survival.tsv"]) == (439, 433)
    assert rows.loc["TCGA-LIHC.star_counts.tsv", "Version"] == "05-09-2024"
    cdr = rows.loc[xena.CDR_DATASET]
    assert cdr["XenaHostNames"] == "pancanAtlasHub" and int(cdr["SampleCount"]) == 12591
    assert cdr["Version"] == "2018-09-13"


# -- list cells as the hub ETL writes them ------------------------------------------------------------------------
def _clinical(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "TCGA-X.clinical.tsv.gz"
    write_xena_table(path, pd.DataFrame(rows))
    return path


def test_list_cells_take_the_primary_diagnosis(tmp_path: Path):
    path = _clinical(
        tmp_path,
        [
            {
                "sample": "TCGA-AA-0001-01A",
                "ajcc_pathologic_stage.diagnoses": ["Stage IIIA", "Stage I"],
                "tumor_grade.diagnoses": ["G3", "G1"],
                "diagnosis_is_primary_disease.diagnoses": ["False", "True"],
                "classification_of_tumor.diagnoses": ["primary", "recurrence"],
            },  # the DR42 flag decides first
            {
                "sample": "TCGA-AA-0002-01A",
                "ajcc_pathologic_stage.diagnoses": "Stage IIB",
                "tumor_grade.diagnoses": "G2",
                "diagnosis_is_primary_disease.diagnoses": "True",
                "classification_of_tumor.diagnoses": "primary",
            },
            {
                "sample": "TCGA-AA-0003-01A",
                "ajcc_pathologic_stage.diagnoses": ["Stage IV", "", "Stage IV"],
                "tumor_grade.diagnoses": ["G1", "G3", ""],
                "diagnosis_is_primary_disease.diagnoses": "",
                "classification_of_tumor.diagnoses": "",
            },
        ],
    )
    clinical, report = xena.read_clinical(path)
    assert clinical["stage"].tolist() == [
        gdc.stage_group("Stage I"),
        gdc.stage_group("Stage IIB"),
        gdc.stage_group("Stage IV"),
    ]
    assert clinical.loc["TCGA-AA-0001", "grade"] == "G1" and pd.isna(clinical.loc["TCGA-AA-0003", "grade"])
    stage, grade = report["clinical_list_cells"]["stage"], report["clinical_list_cells"]["grade"]
    assert stage["list_cells"] == 2 and stage["by_diagnosis_is_primary_disease"] == 1 and stage["records_agree"] == 1
    assert grade["ambiguous_set_missing"] == 1 and grade["ambiguous_patients"] == ["TCGA-AA-0003"]
    assert "primary diagnosis" in report["clinical_list_rule"]


def test_a_stage_outside_the_dictionary_is_missing_and_named(tmp_path: Path):
    path = _clinical(
        tmp_path,
        [
            {"sample": "TCGA-AA-0001-01A", "ajcc_pathologic_stage.diagnoses": "Stage IIIA"},
            {"sample": "TCGA-AA-0002-01A", "ajcc_pathologic_stage.diagnoses": "Stage 5"},
        ],
    )
    clinical, report = xena.read_clinical(path)
    assert clinical.loc["TCGA-AA-0001", "stage"] == "Stage III" and pd.isna(clinical.loc["TCGA-AA-0002", "stage"])
    assert report["clinical_unknown_stage"] == ["TCGA-AA-0002 ('Stage 5')"]


@pytest.mark.parametrize("cell", ["['Stage I', ", "[__import__('os').system('true')]", "[['Stage I']]", "[True]"])
def test_malformed_list_cell_is_an_error_naming_file_column_sample(tmp_path: Path, cell: str):
    path = _clinical(tmp_path, [{"sample": "TCGA-AA-0001-01A", "ajcc_pathologic_stage.diagnoses": cell}])
    with pytest.raises(
        InputFormatError,
        match=r"TCGA-X\.clinical\.tsv\.gz.*'ajcc_pathologic_stage\.diagnoses'.*"
        r"TCGA-AA-0001-01A",
    ):
        xena.read_clinical(path)


def test_misaligned_diagnosis_lists_are_an_error(tmp_path: Path):
    path = _clinical(
        tmp_path,
        [
            {
                "sample": "TCGA-AA-0001-01A",
                "ajcc_pathologic_stage.diagnoses": ["Stage I", "Stage II"],
                "diagnosis_is_primary_disease.diagnoses": ["True", "False", "False"],
            }
        ],
    )
    with pytest.raises(InputFormatError, match=r"TCGA-AA-0001-01A.*2 diagnosis records.*lists 3"):
        xena.read_clinical(path)


def test_sex_at_birth_fills_a_missing_gender_and_absent_fields_are_reported(tmp_path: Path):
    path = _clinical(
        tmp_path,
        [
            {"sample": "TCGA-AA-0001-01A", "gender.demographic": "Male", "sex_at_birth.demographic": "male"},
            {"sample": "TCGA-AA-0002-01A", "gender.demographic": "not reported", "sex_at_birth.demographic": "female"},
            {"sample": "TCGA-AA-0003-01A", "gender.demographic": "female", "sex_at_birth.demographic": "male"},
        ],
    )
    clinical, report = xena.read_clinical(path)
    assert clinical["sex"].tolist() == ["male", "female", "female"]
    assert report["clinical_columns"]["sex"] == "gender.demographic"
    assert report["clinical_rows_by_column"]["sex"] == {"gender.demographic": 2, "sex_at_birth.demographic": 1}
    assert report["clinical_column_conflicts"]["sex"] == [
        "TCGA-AA-0003 (gender.demographic 'female', sex_at_birth.demographic 'male')"
    ]
    assert report["clinical_fields_missing"] == ["age", "stage", "grade"]


def test_clinical_file_not_starting_with_sample_is_an_error(tmp_path: Path):
    path = _clinical(tmp_path, [{"submitter_id": "TCGA-AA-0001", "gender.demographic": "male"}])
    with pytest.raises(InputFormatError, match=r"TCGA-X\.clinical\.tsv\.gz.*'sample'"):
        xena.read_clinical(path)


# -- survival tables: a surprise names the file, column and patient ----------------------------------------------
def test_survival_value_that_is_not_an_event_or_a_time_is_an_error(tmp_path: Path):
    path = tmp_path / "TCGA-X.survival.tsv.gz"
    write_xena_table(
        path,
        pd.DataFrame(
            {
                "sample": ["TCGA-AA-0001-01A", "TCGA-AA-0002-01A"],
                "OS": ["0", "Dead"],
                "_PATIENT": ["TCGA-AA-0001", "TCGA-AA-0002"],
                "OS.time": ["10", "20"],
            }
        ),
    )
    with pytest.raises(InputFormatError, match=r"survival\.tsv\.gz: column 'OS' holds 'Dead' for TCGA-AA-0002"):
        xena.read_survival(path)


def test_cdr_with_missing_columns_or_odd_values_is_an_error(tmp_path: Path):
    columns = {"sample": ["TCGA-AA-0001-01"], "_PATIENT": ["TCGA-AA-0001"], "cancer type abbreviation": ["LIHC"]}
    for endpoint in ("OS", "DSS", "DFI", "PFI"):
        columns[endpoint], columns[f"{endpoint}.time"] = ["1"], ["100"]
    path = tmp_path / xena.CDR_DATASET
    pd.DataFrame({k: v for k, v in columns.items() if k != "DFI.time"}).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputFormatError, match=r"xena_sp: not the TCGA-CDR.*missing columns \['DFI\.time'\]"):
        xena.read_cdr(path, "TCGA-LIHC")
    pd.DataFrame(columns | {"PFI.time": ["-5"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputFormatError, match=r"column 'PFI\.time' holds '-5' for TCGA-AA-0001.*days >= 0"):
        xena.read_cdr(path, "TCGA-LIHC")
    pd.DataFrame(columns | {"DFI": ["#N/A"], "DFI.time": ["#N/A"]}).to_csv(path, sep="\t", index=False)
    cdr = xena.read_cdr(path, "TCGA-LIHC")
    assert cdr.loc["TCGA-AA-0001", "OS"] == 1 and np.isnan(cdr.loc["TCGA-AA-0001", "DFI.time"])


def test_probemap_of_another_gene_model_is_an_error(tmp_path: Path):
    probemap = pd.DataFrame({"gene": ["A", "B"]}, index=pd.Index(["ENSG1.1", "ENSG2.1"], name="id"))
    xena.check_probemap_covers(probemap, ["ENSG1.1", "ENSG2.1"], tmp_path / "map", tmp_path / "counts")
    with pytest.raises(InputFormatError, match=r"counts: 1 of 2 Ensembl_ID rows are not in .*map.*different gene"):
        xena.check_probemap_covers(probemap, ["ENSG1.1", "ENSG2.2"], tmp_path / "map", tmp_path / "counts")
