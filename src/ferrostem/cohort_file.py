"""Reading a harmonised cohort (`cohort.h5ad`) for a job that needs only some of its expression layers."""

from __future__ import annotations

import os
from collections.abc import Sequence

import anndata as ad
import h5py
from anndata.io import read_elem

from .errors import InputFormatError


def read_cohort(path: str | os.PathLike[str], layers: Sequence[str], *, optional: Sequence[str] = ()) -> ad.AnnData:
    """`cohort.h5ad` with its obs, var, uns and only the named `layers` (no X, no other layer); an `optional`
    layer is read where the file has it (an array cohort has no counts) and left out where it has not.

    `anndata.read_h5ad` reads every layer: at TCGA size (424 x 60,660) that is X, counts (int64), tpm and log2,
    515 MB, when a scoring job reads two float32 layers of 103 MB each. `backed="r"` would not help: it leaves
    only X on disk and still reads every layer. The values are those `read_h5ad` gives (the same anndata
    element readers, tests/test_cohort_file.py).
    """
    with h5py.File(path, "r") as handle:
        present = list(handle["layers"].keys()) if "layers" in handle else []
        missing = [name for name in layers if name not in present]
        if missing:
            raise InputFormatError(f"{os.fspath(path)}: no layer(s) {missing} in the cohort (it has {present})")
        return ad.AnnData(
            obs=read_elem(handle["obs"]),
            var=read_elem(handle["var"]),
            uns=read_elem(handle["uns"]) if "uns" in handle else {},
            layers={name: read_elem(handle["layers"][name]) for name in [*layers, *optional] if name in present},
        )


def cohort_layout(path: str | os.PathLike[str]) -> tuple[list[str], str | None]:
    """The names of the cohort's expression layers and its assay (`uns["assay"]`), read without any of the
    layers' values: for a job that chooses the layers it reads by what the cohort has."""
    with h5py.File(path, "r") as handle:
        layers = list(handle["layers"].keys()) if "layers" in handle else []
        uns = handle["uns"] if "uns" in handle else {}
        assay = read_elem(uns["assay"]) if "assay" in uns else None
    return layers, None if assay is None else str(assay)
