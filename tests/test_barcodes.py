import pytest

from ferrostem.barcodes import parse_barcode, tissue_of_code
from ferrostem.errors import CohortError


@pytest.mark.parametrize(
    "barcode, patient, sample, code, sample_type, tissue",
    [
        ("TCGA-02-0001-01C", "TCGA-02-0001", "TCGA-02-0001-01C", "01", "Primary Tumor", "tumor"),
        ("TCGA-DD-A4NG-11A-11R-A311-07", "TCGA-DD-A4NG", "TCGA-DD-A4NG-11A", "11", "Solid Tissue Normal", "normal"),
        (
            "tcga-ab-2803-03a",
            "TCGA-AB-2803",
            "TCGA-AB-2803-03A",
            "03",
            "Primary Blood Derived Cancer - Peripheral Blood",
            "tumor",
        ),
        ("TCGA-EE-A2GJ-06A", "TCGA-EE-A2GJ", "TCGA-EE-A2GJ-06A", "06", "Metastatic", "tumor"),
        ("TCGA-BH-A0B3-10", "TCGA-BH-A0B3", "TCGA-BH-A0B3-10", "10", "Blood Derived Normal", "normal"),
        ("TCGA-XX-0001-20A", "TCGA-XX-0001", "TCGA-XX-0001-20A", "20", "Control Analyte", "other"),
    ],
)
def test_parse_barcode(barcode, patient, sample, code, sample_type, tissue):
    parsed = parse_barcode(barcode)
    assert (parsed.patient_id, parsed.sample_id, parsed.code) == (patient, sample, code)
    assert parsed.sample_type == sample_type
    assert parsed.tissue == tissue


@pytest.mark.parametrize("bad", ["TCGA-02-0001", "GSM11805", "TCGA-02-0001-1A", ""])
def test_bad_barcode_names_the_value(bad):
    with pytest.raises(CohortError, match="is not a TCGA sample barcode"):
        parse_barcode(bad)


def test_tissue_ranges():
    assert [tissue_of_code(f"{c:02d}") for c in (1, 9, 10, 19, 20, 50)] == [
        "tumor",
        "tumor",
        "normal",
        "normal",
        "other",
        "other",
    ]
