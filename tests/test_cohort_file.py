"""read_cohort: the layers a job asks for, exactly as anndata.read_h5ad gives them, and nothing else."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from ferrostem.cohort_file import cohort_layout, read_cohort
from ferrostem.de import Comparison, input_layer
from ferrostem.errors import InputFormatError, ScaleError


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


def test_cohort_layout_names_the_layers_and_assay_without_reading_them(cohort_path, tmp_path):
    full = ad.read_h5ad(cohort_path)
    assert cohort_layout(cohort_path) == (list(full.layers.keys()), "rnaseq")
    array = ad.AnnData(X=np.zeros((2, 3), dtype=np.float32), layers={"log2": np.zeros((2, 3), dtype=np.float32)})
    array.uns["assay"] = "array"
    array.write_h5ad(tmp_path / "array.h5ad")
    assert cohort_layout(tmp_path / "array.h5ad") == (["log2"], "array")
    ad.AnnData(X=np.zeros((2, 3), dtype=np.float32)).write_h5ad(tmp_path / "bare.h5ad")
    assert cohort_layout(tmp_path / "bare.h5ad") == ([], None)


def test_de_reads_the_one_layer_its_method_uses(cohort_path):
    layers, assay = cohort_layout(cohort_path)
    block = {"name": "t", "column": "tissue", "test": "tumor", "reference": "normal"}
    auto = Comparison.from_config(block)
    assert input_layer(auto, "c", assay=assay, layers=layers) == "counts"  # DESeq2 on an RNA-seq cohort
    assert input_layer(auto, "c", assay="array", layers=["log2"]) == "log2"  # the linear model on arrays
    limma = Comparison.from_config({**block, "method": "limma"})
    assert input_layer(limma, "c", assay=assay, layers=layers) == "log2"
    deseq2 = Comparison.from_config({**block, "method": "deseq2"})
    with pytest.raises(ScaleError, match="needs raw counts"):
        input_layer(deseq2, "c", assay="array", layers=["log2"])
