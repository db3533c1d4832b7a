from pathlib import Path

import json
import math

import numpy as np
import pandas as pd
import pytest

from download_server import LoopbackServer
from test_download_http import quick_client

from ferrostem.errors import CohortError, InputFormatError
from ferrostem.sources import gdc
from ferrostem.survival import parse_stage

HEADER = (
    "# gene-model: GENCODE v36\n"
    "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\t"
    "fpkm_unstranded\tfpkm_uq_unstranded\n"
)
SUMMARY = "".join(f"{n}\t\t\t10\t10\t10\t\t\t\n" for n in gdc.STAR_SUMMARY_ROWS)


def star(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + SUMMARY + body)
    return path


GENES = (
    "ENSG00000000003.15\tTSPAN6\tprotein_coding\t3231\t1634\t1597\t44.6685\t16.8557\t23.8956\n"
    "ENSG00000000005.6\tTNMD\tprotein_coding\t0\t0\t0\t0.0000\t0.0000\t0.0000\n"
)


def test_real_excerpt(shared_reference):
    parsed = gdc.read_star_counts(shared_reference / "gdc/augmented_star_gene_counts_EXCERPT.tsv")
    assert parsed.gene_model == "GENCODE v36"
    assert list(parsed.genes["gene_id"]) == ["ENSG00000000003.15", "ENSG00000000005.6", "ENSG00000000419.13"]
    assert list(parsed.genes["unstranded"]) == [3231, 0, 1083]
    assert parsed.genes.loc[2, "tpm_unstranded"] == pytest.approx(56.2676)
    assert parsed.summary["N_noFeature"] == 1446120


def test_merge(tmp_path):
    a = star(tmp_path, "a.tsv", GENES)
    b = star(tmp_path, "b.tsv", GENES.replace("3231", "7"))
    merged = gdc.merge_star_files([a, b], ["S1", "S2"])
    assert merged.counts.tolist() == [[3231, 7], [0, 0]]
    assert merged.counts.dtype == np.int64
    assert merged.unassigned.shape == (2, 4)


def test_truncated_file_names_file(tmp_path):
    path = star(tmp_path, "cut.tsv", GENES[: GENES.index("\t0.0000\t0.0000")])
    with pytest.raises(InputFormatError, match=r"cut\.tsv"):
        gdc.read_star_counts(path)


def test_missing_gene_rows(tmp_path):
    path = tmp_path / "only_header.tsv"
    path.write_text(HEADER + SUMMARY)
    with pytest.raises(InputFormatError, match="no gene rows"):
        gdc.read_star_counts(path)


def test_non_numeric_count_names_gene(tmp_path):
    path = star(tmp_path, "bad.tsv", GENES.replace("\t3231\t", "\tabc\t"))
    with pytest.raises(InputFormatError, match=r"non-numeric value 'abc' for gene 'ENSG00000000003.15'"):
        gdc.read_star_counts(path)


def test_fractional_count_refused(tmp_path):
    path = star(tmp_path, "frac.tsv", GENES.replace("\t3231\t", "\t3231.5\t"))
    with pytest.raises(InputFormatError, match=r"'ENSG00000000003.15' is 3231.5, not a non-negative integer"):
        gdc.read_star_counts(path)
    negative = star(tmp_path, "neg.tsv", GENES.replace("\t3231\t", "\t-5\t"))
    with pytest.raises(InputFormatError, match=r"is -5, not a non-negative integer"):  # not np.float64(-5.0)
        gdc.read_star_counts(negative)


def test_missing_comment_line(tmp_path):
    path = tmp_path / "nocomment.tsv"
    path.write_text(HEADER.split("\n", 1)[1] + SUMMARY + GENES)
    with pytest.raises(InputFormatError, match="gene-model"):
        gdc.read_star_counts(path)


def test_duplicate_sample_ids(tmp_path):
    a = star(tmp_path, "a.tsv", GENES)
    with pytest.raises(CohortError, match="duplicate sample ids among STAR files: \\['S1'\\]"):
        gdc.merge_star_files([a, a], ["S1", "S1"])


def test_files_with_different_genes(tmp_path):
    a = star(tmp_path, "a.tsv", GENES)
    b = star(tmp_path, "b.tsv", GENES.splitlines(keepends=True)[0])
    with pytest.raises(InputFormatError, match=r"b\.tsv: gene rows differ"):
        gdc.merge_star_files([a, b], ["S1", "S2"])


def test_clinical_table_os_convention():
    cases = [
        {
            "submitter_id": "TCGA-AA-0001",
            "demographic": {"vital_status": "Dead", "days_to_death": 300, "sex_at_birth": "Male"},
            "diagnoses": [
                {"age_at_diagnosis": 21915, "ajcc_pathologic_stage": "Stage IIIA", "days_to_last_follow_up": 100}
            ],
        },
        {
            "submitter_id": "TCGA-AA-0002",
            "demographic": {"vital_status": "Alive", "gender": "female"},
            "diagnoses": [{"days_to_last_follow_up": 500, "ajcc_pathologic_stage": "Not Reported"}],
            "follow_ups": [{"days_to_follow_up": 800}, {"days_to_follow_up": None}],
        },
    ]
    table, rules = gdc.clinical_table(cases)
    assert set(rules) == {"single_record"} and rules["single_record"]["count"] == 2
    assert table.loc["TCGA-AA-0001", ["OS", "OS.time"]].tolist() == [1.0, 300.0]
    assert table.loc["TCGA-AA-0002", ["OS", "OS.time"]].tolist() == [0.0, 800.0]
    assert table.loc["TCGA-AA-0001", "stage"] == "Stage III"
    assert table.loc["TCGA-AA-0002", "stage"] is None
    assert table.loc["TCGA-AA-0001", "age"] == pytest.approx(60.0, abs=0.01)
    assert table["sex"].tolist() == ["male", "female"]


def test_clinical_duplicate_patient():
    cases = [{"submitter_id": "TCGA-AA-0001"}, {"submitter_id": "TCGA-AA-0001"}]
    with pytest.raises(CohortError, match="TCGA-AA-0001"):
        gdc.clinical_table(cases)


# -- primary diagnosis among several records (issue 9 item 1) ------------------------------------------


@pytest.mark.shared
def test_real_case_with_three_diagnoses_uses_the_primary(shared_reference):
    hit = json.loads(
        (shared_reference / "real_formats/gdc/cases_hit_TCGA-06-1802_DR42_multiple_diagnoses.json").read_text()
    )
    assert hit["diagnoses"][0]["submitter_id"] == "TCGA-06-1802_diagnosis3"  # the primary is not first
    table, rules = gdc.clinical_table([hit])
    row = table.loc["TCGA-06-1802"]
    assert row["age"] == pytest.approx(22537 / 365.25) == pytest.approx(61.70, abs=0.005)  # diagnoses[0]: 61.92
    assert row["primary_diagnosis"] == "Glioblastoma"  # diagnoses[0] says "Unknown"
    assert row["stage"] is None  # GBM is not AJCC-staged: the primary record has no ajcc_pathologic_stage
    assert row["grade"] is None
    assert rules["diagnosis_is_primary_disease"]["count"] == 1
    assert rules["diagnosis_is_primary_disease"]["ids"] == ["TCGA-06-1802"]


def _diagnosis(suffix: str, stage: str, **flags) -> dict:
    return {"submitter_id": f"TCGA-AA-0001{suffix}", "ajcc_pathologic_stage": stage, **flags}


@pytest.mark.parametrize(
    ("records", "stage", "rule"),
    [
        (
            [
                _diagnosis("_diagnosis2", "Stage IV", diagnosis_is_primary_disease=False),
                _diagnosis("_diagnosis", "Stage II", diagnosis_is_primary_disease=True),
            ],
            "Stage II",
            "diagnosis_is_primary_disease",
        ),
        (
            [
                _diagnosis("_diagnosis2", "Stage IV", classification_of_tumor="recurrence"),
                _diagnosis("_diagnosis3", "Stage I", classification_of_tumor="primary"),
            ],
            "Stage I",
            "classification_of_tumor",
        ),
        (
            [_diagnosis("_diagnosis2", "Stage IV"), _diagnosis("_diagnosis", "Stage III")],
            "Stage III",
            "submitter_id_suffix",
        ),
        # two flagged primaries: the classification narrows them
        (
            [
                _diagnosis(
                    "_diagnosis2", "Stage IV", diagnosis_is_primary_disease=True, classification_of_tumor="metastasis"
                ),
                _diagnosis(
                    "_diagnosis3", "Stage I", diagnosis_is_primary_disease=True, classification_of_tumor="primary"
                ),
            ],
            "Stage I",
            "classification_of_tumor",
        ),
        ([_diagnosis("_diagnosis2", "Stage IV"), _diagnosis("_diagnosis3", "Stage I")], "Stage IV", "first_record"),
    ],
)
def test_primary_diagnosis_rules(records, stage, rule):
    case = {
        "submitter_id": "TCGA-AA-0001",
        "demographic": {"vital_status": "Alive"},
        "diagnoses": records,
        "follow_ups": [{"days_to_follow_up": 10}],
    }
    table, rules = gdc.clinical_table([case])
    assert table.loc["TCGA-AA-0001", "stage"] == stage
    assert rules[rule] == {"rule": gdc.CLINICAL_RULES[rule], "count": 1, "ids": ["TCGA-AA-0001"]}


def test_case_without_diagnosis_counted():
    table, rules = gdc.clinical_table(
        [{"submitter_id": "TCGA-AA-0001", "demographic": {"vital_status": "Dead", "days_to_death": 5}}]
    )
    assert math.isnan(table.loc["TCGA-AA-0001", "age"])
    assert rules["no_diagnosis"]["ids"] == ["TCGA-AA-0001"]


# -- stage values (issue 9 item 3) -------------------------------------------------------------------------

# gdcdictionary src/gdcdictionary/schemas/diagnosis.yaml @ 3.0.3 (5c3ab29c), ajcc_pathologic_stage enum
DICTIONARY_STAGES = [
    "Stage 0",
    "Stage 0a",
    "Stage 0is",
    "Stage I",
    "Stage IA",
    "Stage IA1",
    "Stage IA2",
    "Stage IA3",
    "Stage IB",
    "Stage IB1",
    "Stage IB2",
    "Stage IC",
    "Stage II",
    "Stage IIA",
    "Stage IIA1",
    "Stage IIA2",
    "Stage IIB",
    "Stage IIC",
    "Stage III",
    "Stage IIIA",
    "Stage IIIA1",
    "Stage IIIA2",
    "Stage IIIB",
    "Stage IIIC",
    "Stage IIIC1",
    "Stage IIIC2",
    "Stage IIID",
    "Stage IS",
    "Stage IV",
    "Stage IVA",
    "Stage IVB",
    "Stage IVC",
    "Stage Tis",
    "Stage X",
    "Unknown",
    "Not Reported",
]
EXPECTED_GROUPS = {
    "Stage 0": "Stage 0",
    "Stage 0a": "Stage 0",
    "Stage 0is": "Stage 0",
    "Stage Tis": "Stage 0",
    "Stage IS": "Stage IS",
    "Stage X": None,
    "Unknown": None,
    "Not Reported": None,
    "Not Allowed To Collect": None,
    # older dictionary releases (ajcc_clinical_stage / figo spellings also seen in ajcc_pathologic_stage)
    "Stage IB Cervix": "Stage I",
    "Stage II Cervix": "Stage II",
    "Stage IIA Cervix": "Stage II",
    "Stage IIC1": "Stage II",
    "IS": "Stage IS",
    "I/II NOS": None,
}


def test_every_dictionary_stage_is_mapped():
    assert set(DICTIONARY_STAGES) <= set(gdc.STAGE_GROUPS)
    for value in gdc.STAGE_GROUPS:
        expected = EXPECTED_GROUPS.get(value)
        if value not in EXPECTED_GROUPS:  # Stage I.. IV and their sub-stages fold into the Roman group
            roman = value.removeprefix("Stage ").rstrip("ABCD0123456789")
            expected = f"Stage {roman}"
            assert roman in {"I", "II", "III", "IV"}, value
        assert gdc.stage_group(value) == expected, value
    # Stage 0 / IS are not Stage I; the survival covariate gives them no stage number (they leave a
    # stage-adjusted Cox with the note of dropped rows) rather than counting them as stage I
    for value in ["Stage 0", "Stage 0is", "Stage Tis", "Stage IS"]:
        assert gdc.stage_group(value) != "Stage I"
        assert math.isnan(parse_stage(gdc.stage_group(value)))
    assert [parse_stage(gdc.stage_group(v)) for v in ["Stage IA3", "Stage IIC", "Stage IIID", "Stage IVC"]] == [
        1,
        2,
        3,
        4,
    ]
    assert gdc.stage_group(None) is None and gdc.stage_group("--") is None and gdc.stage_group(float("nan")) is None
    # legacy spellings (tumor_stage, TCGA bracketed labels) and a 2016 value spanning two groups
    assert [
        gdc.stage_group(v) for v in ["stage iiia", "STAGE IVB", "IS", "I/II NOS", "[Not Available]", "[Discrepancy]"]
    ] == ["Stage III", "Stage IV", "Stage IS", None, None, None]


def test_unknown_stage_value_is_named_never_guessed():
    with pytest.raises(gdc.UnknownStageError, match="'Stage IIIE'"):
        gdc.stage_group("Stage IIIE")
    case = {
        "submitter_id": "TCGA-AA-0001",
        "demographic": {"vital_status": "Alive"},
        "diagnoses": [{"ajcc_pathologic_stage": "Stage IIIE", "days_to_last_follow_up": 3}],
    }
    table, rules = gdc.clinical_table([case])
    assert table.loc["TCGA-AA-0001", "stage"] is None
    assert rules["unknown_stage"]["ids"] == ["TCGA-AA-0001 ('Stage IIIE')"]


# -- contradictory clinical records (issue 10 item 4) -------------------------------------------------------


def test_contradictory_survival_records_resolved_and_named():
    def case(patient, **demographic):
        return {"submitter_id": patient, "demographic": demographic, "diagnoses": [{"days_to_last_follow_up": 400}]}

    cases = [
        case("TCGA-AA-0001", vital_status="Dead", days_to_death=200),  # dies before the last follow-up
        case("TCGA-AA-0002", vital_status="Alive", days_to_death=350),  # a death time on a living patient
        case("TCGA-AA-0003"),  # no vital_status
        case("TCGA-AA-0004", vital_status="Not Reported"),
        case("TCGA-AA-0005", vital_status="Dead"),  # dead without a death time
        case("TCGA-AA-0006", vital_status="Dead", days_to_death=900),  # consistent
        {"submitter_id": "TCGA-AA-0007", "demographic": {"vital_status": "alive"}, "diagnoses": [{}]},
    ]
    table, rules = gdc.clinical_table(cases)
    assert table.loc["TCGA-AA-0001", ["OS", "OS.time"]].tolist() == [1.0, 200.0]
    assert rules["death_before_follow_up"]["ids"] == ["TCGA-AA-0001"]
    assert table.loc["TCGA-AA-0002", ["OS", "OS.time"]].isna().all()
    assert rules["death_time_on_alive"]["ids"] == ["TCGA-AA-0002"]
    assert rules["vital_status_missing"]["ids"] == ["TCGA-AA-0003", "TCGA-AA-0004"]
    assert table.loc[["TCGA-AA-0003", "TCGA-AA-0004"], "OS"].isna().all()
    assert rules["dead_without_death_time"]["ids"] == ["TCGA-AA-0005"]
    assert table.loc["TCGA-AA-0006", ["OS", "OS.time"]].tolist() == [1.0, 900.0]
    assert rules["alive_without_follow_up"]["ids"] == ["TCGA-AA-0007"]


def test_vital_status_outside_dictionary_is_an_error():
    with pytest.raises(InputFormatError, match=r"TCGA-AA-0001: vital_status 'Deceased'"):
        gdc.clinical_table([{"submitter_id": "TCGA-AA-0001", "demographic": {"vital_status": "Deceased"}}])


def _file_hit(sample: str, sample_type: str, file_id: str = "f1") -> dict:
    return {
        "file_id": file_id,
        "file_name": "x.tsv",
        "cases": [{"submitter_id": sample[:12], "samples": [{"submitter_id": sample, "sample_type": sample_type}]}],
    }


def test_barcode_wins_over_a_contradicting_gdc_sample_type():
    sheet = gdc.file_sheet(
        [_file_hit("TCGA-AA-0001-11A", "Primary Tumor"), _file_hit("TCGA-AA-0002-01A", "Primary Tumor", "f2")]
    )
    assert sheet["sample_type"].tolist() == ["Solid Tissue Normal", "Primary Tumor"]
    assert sheet["tissue"].tolist() == ["normal", "tumor"]
    conflicts = gdc.sample_type_conflicts(sheet)
    assert conflicts["sample_type_conflict"]["ids"] == [
        "TCGA-AA-0001-11A (GDC: Primary Tumor; barcode 11: Solid Tissue Normal)"
    ]
    assert gdc.sample_type_conflicts(sheet.iloc[1:]) == {}


# -- /status, pagination and other real answers (issue 9 item 10) ------------------------------------------


@pytest.mark.shared
def test_real_status_answer(shared_reference):
    status = json.loads((shared_reference / "real_formats/gdc/status_response_DR8.json").read_text())
    parsed = gdc.parse_status(status, "status_response_DR8.json")
    assert parsed == {
        "data_release": "Data Release 8.0 - August 22, 2017",
        "release_number": "8.0",
        "release_date": "August 22, 2017",
        "status": "OK",
        "tag": "1.10.0",
        "version": 1,
        "commit": "23e5f2ae47eecadec62b6eca8a117e906b22c946",
    }


def test_status_without_data_release_is_labelled():
    assert gdc.parse_status({"status": "OK"}, "x")["data_release"] == "unknown (no data_release in /status)"


@pytest.mark.shared
def test_real_pagination_and_hits(shared_reference):
    folder = shared_reference / "real_formats/gdc"
    page = json.loads((folder / "files_fields_file_name_from0_size2.json").read_text())
    assert page["data"]["pagination"] == {
        "count": 2,
        "total": 931947,
        "size": 2,
        "from": 0,
        "sort": "",
        "page": 1,
        "pages": 465974,
    }
    assert [h["file_name"] for h in gdc.load_hits_document(page, "x")][
        1
    ] == "nationwidechildrens.org_ssf.TCGA-AN-A0FL.xml"
    sorted_page = json.loads((folder / "files_size2_sort_file_size.json").read_text())
    hits = gdc.load_hits_document(sorted_page, "x")
    assert [h["file_id"] for h in hits] == [
        "0ab5e358-b1ff-4433-8959-c37c5890d9aa",
        "a8bc2405-b57d-48bb-b241-18b3e28caa56",
    ]
    assert [h["file_size"] for h in hits] == [20, 20]
    cases = gdc.load_json_hits(folder / "cases_default_fields_TCGA-BH-A0EA.json")
    assert [c["submitter_id"] for c in cases] == ["TCGA-BH-A0EA"]
    assert cases[0]["case_id"] == "1f601832-eee3-48fb-acf5-80c4a454f26e"  # the id /cases paging sorts on


@pytest.mark.shared
def test_real_file_hit_sample(shared_reference):
    hit = json.loads((shared_reference / "real_formats/gdc/files_uuid_expand_cases.samples.json").read_text())["data"]
    hit["cases"][0]["submitter_id"] = "TCGA-B6-A0RI"  # the expand=cases.samples answer lists samples only
    sheet = gdc.file_sheet([hit])
    assert sheet.loc[
        0, ["file_id", "sample_id", "patient_id", "sample_type_code", "sample_type", "tissue"]
    ].tolist() == [
        "573ee7e9-b8bd-419e-808b-a027c4311731",
        "TCGA-B6-A0RI-10A",
        "TCGA-B6-A0RI",
        "10",
        "Blood Derived Normal",
        "normal",
    ]
    assert gdc.sample_type_conflicts(sheet) == {}  # GDC's label and the barcode agree


@pytest.mark.shared
def test_real_case_with_expanded_diagnoses(shared_reference):
    answer = json.loads(
        (shared_reference / "real_formats/gdc/cases_uuid_expand_diagnoses_TCGA-BH-A0EA.json").read_text()
    )
    table, rules = gdc.clinical_table([answer["data"]])
    row = table.loc["TCGA-BH-A0EA"]
    assert row["stage"] == "Stage II"  # "Stage IIA"
    assert row["age"] == pytest.approx(26548 / 365.25)
    assert row["primary_diagnosis"] == "Infiltrating duct carcinoma, NOS"
    assert rules["single_record"]["ids"] == ["TCGA-BH-A0EA"]
    assert math.isnan(row["OS"])  # no demographic in this answer: counted, not guessed
    assert rules["vital_status_missing"]["ids"] == ["TCGA-BH-A0EA"]


# -- paging against the loopback GDC (issue 9 items 8 and 10) ----------------------------------------------


@pytest.fixture()
def gdc_server(tmp_path: Path):
    (tmp_path / "served").mkdir()
    with LoopbackServer(tmp_path / "served") as server:
        # served unsorted: only the client's `sort` makes the pages line up
        server.gdc_files = [{"file_id": f"f{i:02d}", "file_name": f"{i}.tsv"} for i in (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)]
        server.gdc_cases = [{"case_id": f"c{i}", "submitter_id": f"TCGA-AA-000{i}"} for i in (2, 0, 1)]
        yield server


def test_paging_sorted_and_complete(gdc_server: LoopbackServer, tmp_path: Path):
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    files = gdc._page_through(client, gdc_server.gdc_api + "/files", {"filters": {}}, 3, "file_id")
    assert [h["file_id"] for h in files] == [f"f{i:02d}" for i in range(10)]
    cases = gdc._page_through(client, gdc_server.gdc_api + "/cases", {"expand": gdc.CASE_EXPAND}, 2, "case_id")
    assert [h["case_id"] for h in cases] == ["c0", "c1", "c2"]
    assert gdc_server.count("/gdcapi/files") == 4 and gdc_server.count("/gdcapi/cases") == 2
    bodies = [json.loads(b) for b in gdc_server.gdc_queries]
    assert {b["sort"] for b in bodies} == {"file_id:asc", "case_id:asc"}
    assert [b["from"] for b in bodies if b["sort"] == "file_id:asc"] == [0, 3, 6, 9]
    last = gdc_server.gdc_answers[3]["data"]["pagination"]
    assert last == {"count": 1, "total": 10, "size": 3, "from": 9, "sort": "file_id:asc", "page": 4, "pages": 4}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            "overlap",
            r"/files: pagination.total is 10 but the pages \(sorted by file_id, 3 per page\) held 10 hits "
            r"with 9 distinct file_ids; repeated: \['f02'\]",
        ),
        (
            "window",
            r"/files: pagination.total is 10 but the pages \(sorted by file_id, 3 per page\) held 6 hits "
            r"with 6 distinct file_ids",
        ),
    ],
)
def test_inconsistent_pages_fail_loudly(gdc_server: LoopbackServer, tmp_path: Path, fault: str, message: str):
    if fault == "overlap":
        gdc_server.gdc_page_overlap = True  # page 2 repeats f02 and f05 is never served, yet 10 hits arrive
    else:
        gdc_server.gdc_result_window = 6  # an empty page before total is reached
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    with pytest.raises(InputFormatError, match=message):
        gdc._page_through(client, gdc_server.gdc_api + "/files", {"filters": {}}, 3, "file_id")


def test_total_changing_between_pages_fails(gdc_server: LoopbackServer, tmp_path: Path, monkeypatch):
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    real = client.request_json

    def growing(url, body=None):
        answer = real(url, body=body)
        gdc_server.gdc_files.append({"file_id": f"new{len(gdc_server.gdc_files)}", "file_name": "n.tsv"})
        return answer

    monkeypatch.setattr(client, "request_json", growing)
    with pytest.raises(InputFormatError, match=r"/files: data.pagination.total changed from 10 to 11"):
        gdc._page_through(client, gdc_server.gdc_api + "/files", {"filters": {}}, 3, "file_id")


@pytest.mark.shared
def test_batch_tar_like_the_real_one(gdc_server: LoopbackServer, tmp_path: Path, shared_reference):
    import hashlib
    import tarfile

    data = {h["file_id"]: f"payload of {h['file_id']}\n".encode() for h in gdc_server.gdc_files}
    for hit in gdc_server.gdc_files:
        hit["md5sum"], hit["file_size"] = hashlib.md5(data[hit["file_id"]]).hexdigest(), len(data[hit["file_id"]])
    gdc_server.gdc_data = data
    gdc_server.gdc_annotations = {"f01": "id\tentity_type\tcategory\nx\tcase\tItem flagged DNU\n"}
    ids = ["f00", "f01", "f02"]
    archive = tmp_path / "batch.tar.gz"
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    client.post_to_file(gdc_server.gdc_api + "/data", {"ids": ids}, archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = pd.read_csv(tar.extractfile("MANIFEST.txt"), sep="\t")
    assert names[0] == "MANIFEST.txt" and "f01/annotations.txt" in names
    real = pd.read_csv(shared_reference / "real_formats/gdc/gdc_manifest_example.txt", sep="\t")
    assert list(manifest.columns) == list(real.columns) == ["id", "filename", "md5", "size", "state"]
    assert manifest["id"].tolist() == ids
    wanted = {
        h["file_id"]: gdc._Wanted(h["file_name"], gdc.Expected(size=h["file_size"], md5=h["md5sum"]))
        for h in gdc_server.gdc_files
        if h["file_id"] in ids
    }
    done = gdc.extract_batch(client, archive, "loopback /data", wanted, gdc_server.gdc_api)
    assert done == set(ids)  # MANIFEST.txt and annotations.txt are skipped, every wanted file verified
    stored = sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert stored == ids


def test_demo_cases_with_several_diagnoses_use_the_primary(demo_dir: Path, demo_rnaseq):
    truth = json.loads((demo_dir / "truth/truth.json").read_text())["gdc"]
    cases = gdc.load_json_hits(demo_dir / "mirror/api.gdc.cancer.gov/cases/TCGA-DEMO.json")
    several = {c["submitter_id"]: c["diagnoses"] for c in cases if len(c["diagnoses"]) > 1}
    assert len(several) == truth["cases_with_a_recurrence_record_first"] == 17
    rules = demo_rnaseq.uns["harmonisation"]["clinical_rules"]
    assert rules["diagnosis_is_primary_disease"]["count"] == 17
    assert set(rules) == {"single_record", "diagnosis_is_primary_disease"}  # the demo has no contradictions
    tumours = demo_rnaseq.obs[demo_rnaseq.obs["tissue"] == "tumor"].set_index("patient_id")
    for patient, diagnoses in several.items():
        primary = diagnoses[1]
        assert diagnoses[0]["classification_of_tumor"] == "recurrence"
        assert tumours.loc[patient, "stage"] == gdc.stage_group(primary["ajcc_pathologic_stage"])
        assert tumours.loc[patient, "age"] == pytest.approx(primary["age_at_diagnosis"] / 365.25)


def test_planted_contradictions_reach_harmonisation_and_the_cohort_report(demo_dir: Path, tmp_path: Path):
    import shutil

    from ferrostem.harmonise import harmonise_cohort
    from ferrostem.cohort_report import cohort_section

    raw = tmp_path / "gdc"
    shutil.copytree(demo_dir / "gdc", raw)
    files = json.loads((raw / "files.json").read_text())
    normal = next(h for h in files["data"]["hits"] if h["cases"][0]["samples"][0]["submitter_id"][13:15] == "11")
    normal["cases"][0]["samples"][0]["sample_type"] = "Primary Tumor"  # the barcode says -11, normal tissue
    (raw / "files.json").write_text(json.dumps(files))
    cases = json.loads((raw / "cases.json").read_text())
    by_id = {c["submitter_id"]: c for c in cases["data"]["hits"]}
    alive = sorted(p for p, c in by_id.items() if c["demographic"]["vital_status"] == "Alive" and p[8] == "0")[:2]
    dead = sorted(p for p, c in by_id.items() if c["demographic"]["vital_status"] == "Dead")[0]
    by_id[alive[0]]["demographic"]["days_to_death"] = 10  # a death time on a living patient
    del by_id[alive[1]]["demographic"]["vital_status"]  # no vital status
    by_id[dead]["follow_ups"] = [{"days_to_follow_up": by_id[dead]["demographic"]["days_to_death"] + 100}]
    (raw / "cases.json").write_text(json.dumps(cases))

    adata = harmonise_cohort({"source": "gdc", "project": "TCGA-DEMO", "simulated": True}, raw)
    rules = adata.uns["harmonisation"]["clinical_rules"]
    sample = normal["cases"][0]["samples"][0]["submitter_id"]
    assert list(rules["sample_type_conflict"]["ids"]) == [
        f"{sample} (GDC: Primary Tumor; barcode 11: Solid Tissue Normal)"
    ]
    assert adata.obs.loc[sample, "tissue"] == "normal" and adata.obs.loc[sample, "sample_type"] == "Solid Tissue Normal"
    assert list(rules["death_time_on_alive"]["ids"]) == [alive[0]]
    assert list(rules["vital_status_missing"]["ids"]) == [alive[1]]
    assert list(rules["death_before_follow_up"]["ids"]) == [dead]
    tumours = adata.obs[adata.obs["tissue"] == "tumor"].set_index("patient_id")
    assert tumours.loc[alive, "OS"].isna().all()
    assert tumours.loc[dead, "OS.time"] == by_id[dead]["demographic"]["days_to_death"]

    section = cohort_section(adata, "planted")
    table = section.context["harmonisation"]  # the one rules table
    for text in [sample, alive[0], alive[1], dead, "diagnosis_is_primary_disease == true"]:
        assert text in table
    warned = " | ".join(section.warnings)
    for text in [sample, alive[0], alive[1], dead]:
        assert text in warned
    assert "diagnosis_is_primary_disease == true" not in warned  # a routine choice: in the table only
    # with the TCGA-CDR as survival source the GDC-derived OS is replaced, so its rules are not reported
    patients = sorted(set(adata.obs["patient_id"].astype(str)))
    cdr = pd.DataFrame(
        {
            "sample": [f"{p}-01" for p in patients],
            "_PATIENT": patients,
            "cancer type abbreviation": "DEMO",
            "Redaction": "",
        }
    )
    for endpoint in ("OS", "DSS", "DFI", "PFI"):
        cdr[endpoint], cdr[f"{endpoint}.time"] = 0, 100
    cdr.to_csv(tmp_path / "cdr.tsv", sep="\t", index=False)
    with_cdr = harmonise_cohort(
        {"source": "gdc", "project": "TCGA-DEMO", "simulated": True, "survival_source": "cdr"},
        raw,
        tmp_path / "cdr.tsv",
    )
    assert set(with_cdr.uns["harmonisation"]["clinical_rules"]) == {
        "sample_type_conflict",
        "single_record",
        "diagnosis_is_primary_disease",
    }


@pytest.mark.parametrize("honour_range", [False, True])
def test_cut_single_file_resumes_or_restarts(gdc_server: LoopbackServer, tmp_path: Path, honour_range: bool):
    # whether GDC answers an open-ended `Range: bytes=N-` is unknown (real-services.md G18): both answers end in
    # the verified file, a 206 by appending, a 200 by starting again
    import hashlib

    data = ("gene\tcount\n" + "ENSG00000000003\t1\n" * 40_000).encode()  # 800 kB: several network chunks
    hit = {"file_id": "f00", "file_name": "a.tsv", "md5sum": hashlib.md5(data).hexdigest(), "file_size": len(data)}
    gdc_server.gdc_files, gdc_server.gdc_data = [hit], {"f00": data}
    gdc_server.gdc_honour_range = honour_range
    gdc_server.faults["/gdcapi/data/f00"] = ["truncate"]
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    paths = gdc.download_data(client, [hit], gdc_server.gdc_api, batch_files=1)
    assert paths["f00"].read_bytes() == data
    ranges = [headers.get("Range") for method, path, headers in gdc_server.requests if path == "/gdcapi/data/f00"]
    assert len(ranges) == 2 and ranges[0] is None
    assert 0 < int(ranges[1].removeprefix("bytes=").removesuffix("-")) <= len(data) // 2


def test_query_project_asks_for_what_the_parsers_read(gdc_server: LoopbackServer, tmp_path: Path):
    gdc_server.gdc_status = json.loads(
        '{"commit": "23e5f2ae", "data_release": "Data Release 42.0 - December 3, 2024",'
        ' "status": "OK", "tag": "7.3.0", "version": 1}'
    )
    client = quick_client(tmp_path / "store", read_timeout=5.0)
    answers = gdc.query_project(client, "TCGA-DEMO", gdc_server.gdc_api, page_size=4)
    assert [h["file_id"] for h in answers["files"]] == sorted(h["file_id"] for h in gdc_server.gdc_files)
    assert [h["case_id"] for h in answers["cases"]] == ["c0", "c1", "c2"]
    bodies = [json.loads(b) for b in gdc_server.gdc_queries]
    files_body, cases_body = bodies[0], bodies[-1]
    assert {
        "file_id",
        "file_name",
        "md5sum",
        "file_size",
        "cases.samples.submitter_id",
        "cases.samples.sample_type",
    } <= set(files_body["fields"].split(","))
    assert files_body["sort"] == "file_id:asc" and files_body["format"] == "JSON"
    assert cases_body["expand"] == "demographic,diagnoses,follow_ups" and "fields" not in cases_body
    assert cases_body["sort"] == "case_id:asc"
    assert cases_body["filters"] == {
        "op": "in",
        "content": {"field": "cases.project.project_id", "value": ["TCGA-DEMO"]},
    }
    assert gdc.parse_status(answers["status"], "loopback")["release_number"] == "42.0"


def test_non_numeric_clinical_day_count_names_case_and_field():
    case = {"submitter_id": "TCGA-AA-0001", "demographic": {"vital_status": "Dead", "days_to_death": "ten"}}
    with pytest.raises(InputFormatError, match=r"TCGA-AA-0001: demographic.days_to_death 'ten' is not a number"):
        gdc.clinical_table([case])
