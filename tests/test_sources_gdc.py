from pathlib import Path

import numpy as np
import pytest

from ferrostem.errors import CohortError, InputFormatError
from ferrostem.sources import gdc

HEADER = ("# gene-model: GENCODE v36\n"
          "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\t"
          "fpkm_unstranded\tfpkm_uq_unstranded\n")
SUMMARY = "".join(f"{n}\t\t\t10\t10\t10\t\t\t\n" for n in gdc.STAR_SUMMARY_ROWS)


def star(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + SUMMARY + body)
    return path


GENES = ("ENSG00000000003.15\tTSPAN6\tprotein_coding\t3231\t1634\t1597\t44.6685\t16.8557\t23.8956\n"
         "ENSG00000000005.6\tTNMD\tprotein_coding\t0\t0\t0\t0.0000\t0.0000\t0.0000\n")


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
    with pytest.raises(InputFormatError, match="not a non-negative integer"):
        gdc.read_star_counts(path)


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
        {"submitter_id": "TCGA-AA-0001", "demographic": {"vital_status": "Dead", "days_to_death": 300, "sex_at_birth": "Male"},
         "diagnoses": [{"age_at_diagnosis": 21915, "ajcc_pathologic_stage": "Stage IIIA", "days_to_last_follow_up": 100}]},
        {"submitter_id": "TCGA-AA-0002", "demographic": {"vital_status": "Alive", "gender": "female"},
         "diagnoses": [{"days_to_last_follow_up": 500, "ajcc_pathologic_stage": "Not Reported"}],
         "follow_ups": [{"days_to_follow_up": 800}, {"days_to_follow_up": None}]},
    ]
    table = gdc.clinical_table(cases)
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
