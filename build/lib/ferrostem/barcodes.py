"""TCGA barcodes: patient, sample and the two-digit sample-type code (GDC Encyclopedia, "TCGA Barcode").

The sample barcode is TCGA-TSS-PPPP-SSV...; characters 14-15 are the sample type: tumours 01-09,
normals 10-19, controls 20-29. Labels are the GDC API `sample_type` strings (TCGAbiolinks R/query.R).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import CohortError

SAMPLE_TYPES: dict[str, str] = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Tissue disease-specific post-adjuvant therapy",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
    "20": "Control Analyte",
    "40": "Recurrent Blood Derived Cancer - Peripheral Blood",
    "50": "Cell Lines",
    "60": "Primary Xenograft Tissue",
    "61": "Cell Line Derived Xenograft Tissue",
    "99": "Granulocytes",
}

_BARCODE = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})-(\d{2})([A-Z])?(?:-.*)?$")


@dataclass(frozen=True)
class Barcode:
    patient_id: str
    sample_id: str
    code: str
    vial: str

    @property
    def sample_type(self) -> str:
        return SAMPLE_TYPES.get(self.code, f"sample type {self.code}")

    @property
    def tissue(self) -> str:
        return tissue_of_code(self.code)


def tissue_of_code(code: str) -> str:
    """'tumor' for 01-09 (and 40), 'normal' for 10-19, 'other' for controls, cell lines and xenografts."""
    value = int(code)
    if 1 <= value <= 9 or value == 40:
        return "tumor"
    if 10 <= value <= 19:
        return "normal"
    return "other"


def parse_barcode(barcode: str) -> Barcode:
    """Split a TCGA sample or aliquot barcode; the sample id keeps the vial letter when present."""
    match = _BARCODE.match(barcode.strip().upper())
    if match is None:
        raise CohortError(
            f"{barcode!r} is not a TCGA sample barcode (expected TCGA-TSS-PPPP-SS[V], e.g. TCGA-02-0001-01C)"
        )
    patient, code, vial = match.group(1), match.group(2), match.group(3) or ""
    return Barcode(patient_id=patient, sample_id=f"{patient}-{code}{vial}", code=code, vial=vial)
