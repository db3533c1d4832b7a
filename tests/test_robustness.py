"""Small cases that used to crash or mislead: a false 'no normal samples', unnamed genes, inf in a layer."""

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from ferrostem import risk_models as md
from ferrostem.cohort import HarmonisationRules, build_anndata
from ferrostem.errors import CohortError, InputFormatError
from ferrostem.harmonise import load_xena_cohort
from ferrostem.sources import xena


def test_no_measured_gene_of_interest_is_not_a_missing_normal(demo_rnaseq):
    _, notes = md.tumour_vs_normal(demo_rnaseq, ["NOT_A_GENE"])
    assert notes == ["gene of interest NOT_A_GENE: not measured in this cohort"]
    tumours = demo_rnaseq[demo_rnaseq.obs["tissue"] == "tumor"].copy()
    _, notes = md.tumour_vs_normal(tumours, ["NOT_A_GENE"])
    assert "no normal samples: tumour vs normal comparison not possible" in notes


def _tiny(tpm: np.ndarray):
    obs = pd.DataFrame(
        {"sample_id": ["S1", "S2"], "patient_id": ["P1", "P2"], "tissue": ["tumor", "tumor"]}, index=["S1", "S2"]
    )
    var = pd.DataFrame({"symbol": ["GPX4", "TP53"]})
    return build_anndata(
        obs=obs,
        var=var,
        layers={"tpm": tpm, "log2": np.log2(np.clip(tpm, 0, 1e30) + 1)},
        layer_scales={"tpm": "TPM", "log2": "log2(TPM+1)"},
        assay="rnaseq",
        provenance_record={"source": "test"},
        harmonisation={},
    )


@pytest.mark.parametrize("value, shown", [(1e39, "1e+39"), (np.inf, "inf")])
def test_infinite_layer_value_is_an_error_naming_sample_and_gene(value, shown):
    tpm = np.array([[1.0, 2.0], [3.0, value]])
    with pytest.raises(
        CohortError,
        match=rf"layer 'tpm': 1 values are infinite or beyond float32 \(3\.4e38\), "
        rf"e\.g\. {re.escape(shown)} for sample S2, gene TP53; .*declared scale",
    ):
        _tiny(tpm)
    assert np.isfinite(_tiny(np.array([[1.0, 2.0], [3.0, 4.0]])).layers["tpm"]).all()


def test_xena_genes_in_only_one_matrix_are_named(tmp_path):
    project = "TCGA-X"
    names = xena.dataset_names(project)
    sample = "TCGA-AA-0001-01A"
    (tmp_path / names["star_counts"]).write_bytes(
        gzip.compress(f"Ensembl_ID\t{sample}\nENSG1.1\t1.0\nENSG2.1\t2.0\n".encode())
    )
    (tmp_path / names["star_tpm"]).write_bytes(
        gzip.compress(f"Ensembl_ID\t{sample}\nENSG1.1\t1.0\nENSG3.1\t2.0\n".encode())
    )
    with pytest.raises(
        InputFormatError,
        match=r"genes differ .*2 ids in only one of them: only in star_tpm "
        r"\['ENSG3\.1'\], only in star_counts \['ENSG2\.1'\]",
    ):
        load_xena_cohort(tmp_path, project, HarmonisationRules())
