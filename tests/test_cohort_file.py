"""read_cohort: the layers a job asks for, exactly as anndata.read_h5ad gives them, and nothing else."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from ferrostem.cohort_file import read_cohort
from ferrostem.errors import InputFormatError


@pytest.fixture
def cohort_path(tmp_path):
    rng = np.random.default_rng(3)
    samples = pd.Index([f"S{i}" for i in range(6)], name="sample_id")
    genes = pd.Index(["GPX4", "SLC7A11", "TP53", "ACSL4"], name="symbol")
    counts = rng.poisson(50, (6, 4)).astype(np.int64)
    tpm = (counts / counts.sum(axis=1, keepdims=True) * 1e6).astype(np.float32)
    obs = pd.DataFrame(
        {
            "tissue": pd.Categorical(["tumor", "normal", "tumor", "tumor", "normal", "tumor"]),
            "age": [61.0, np.nan, 47.5, 70.0, 55.0, 66.0],
            "patient_id": ["P0", "P1", "P2", "P3", "P1", "P4"],
            "OS": pd.array([1, 0, None, 1, 0, 0], dtype="Int64"),
        },
        index=samples,
    )
    var = pd.DataFrame(
        {"gene_id": ["ENSG1", "ENSG2", "ENSG3", "ENSG4"], "biotype": pd.Categorical(["protein_coding"] * 4)},
        index=genes,
    )
    adata = ad.AnnData(
        X=np.log2(tpm + 1),
        obs=obs,
        var=var,
        layers={"counts": counts, "tpm": tpm, "log2": np.log2(tpm + 1)},
        uns={"assay": "rnaseq", "layer_scales": {"tpm": "linear", "log2": "log2"}, "harmonisation": {"n": 3}},
    )
    path = tmp_path / "cohort.h5ad"
    adata.write_h5ad(path)
    return path


def test_read_cohort_gives_read_h5ads_values_for_the_layers_asked(cohort_path):
    full = ad.read_h5ad(cohort_path)
    part = read_cohort(cohort_path, ["log2", "tpm"])
    assert list(part.layers.keys()) == ["log2", "tpm"]
    assert part.X is None
    for name in ("log2", "tpm"):
        assert part.layers[name].dtype == full.layers[name].dtype
        np.testing.assert_array_equal(part.layers[name], full.layers[name])
    pd.testing.assert_frame_equal(part.obs, full.obs)
    pd.testing.assert_frame_equal(part.var, full.var)
    assert list(part.obs_names) == list(full.obs_names) and list(part.var_names) == list(full.var_names)
    assert part.uns["assay"] == full.uns["assay"]
    assert dict(part.uns["layer_scales"]) == dict(full.uns["layer_scales"])
    assert dict(part.uns["harmonisation"]) == dict(full.uns["harmonisation"])


def test_read_cohort_names_the_file_and_the_missing_layer(cohort_path):
    with pytest.raises(InputFormatError, match=r"cohort\.h5ad.*'vst'"):
        read_cohort(cohort_path, ["log2", "vst"])


def test_an_optional_layer_is_read_where_present_and_left_out_where_absent(cohort_path):
    part = read_cohort(cohort_path, ["log2"], optional=["counts", "not_a_layer"])
    assert list(part.layers) == ["log2", "counts"] and part.X is None
    np.testing.assert_array_equal(part.layers["counts"], ad.read_h5ad(cohort_path).layers["counts"])
    with pytest.raises(InputFormatError, match="not_a_layer"):
        read_cohort(cohort_path, ["not_a_layer"], optional=["counts"])
