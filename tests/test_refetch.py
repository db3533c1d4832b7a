"""A raw file that fails to parse says how to fetch it again (the raw folder is a snapshot of the store)."""

import gzip
import os
import shutil

import pytest

from ferrostem.download import download_cohort, refetch_hint, settings
from ferrostem.errors import InputFormatError
from ferrostem.harmonise import harmonise_downloaded

from conftest import DEMO_GEO_MAPPING

COHORT = {"source": "geo", "accession": "GSE0000", "simulated": True, "geo": DEMO_GEO_MAPPING}


def _replace(path, text: str) -> None:
    """Write a new file over `path` (a new inode, as an editor or `mv` does)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(gzip.compress(text.encode()))
    os.replace(tmp, path)


def test_stale_raw_copy_names_the_command_that_fetches_it_again(demo_dir, tmp_path):
    store = tmp_path / "store"
    download = settings({"mirror": str(demo_dir / "mirror"), "download": {"store": str(store)}})
    raw = tmp_path / "results" / "raw" / "demo_geo"
    download_cohort(COHORT, download, raw)
    stored = next(store.rglob("GSE0000_series_matrix.txt.gz"))
    good = gzip.decompress(stored.read_bytes()).decode()
    _replace(stored, good.replace("!series_matrix_table_end\n", ""))  # a complete gzip, a truncated matrix
    shutil.rmtree(raw)
    download_cohort(COHORT, download, raw)  # the store's copy has no checksum to fail: it is linked as it is
    hint = refetch_hint(raw, store)
    with pytest.raises(InputFormatError) as error:
        harmonise_downloaded(COHORT, raw, refetch=hint)
    message = str(error.value)
    assert "no !series_matrix_table_end line; the file is truncated" in message
    assert f"`rm -r {raw}` (or add `--forcerun download_cohort`)" in message and str(store) in message

    _replace(stored, good)  # the user repairs the store: the raw folder still holds the old file
    with pytest.raises(InputFormatError, match="the file is truncated"):
        harmonise_downloaded(COHORT, raw, refetch=hint)
    shutil.rmtree(raw)  # what the hint says
    download_cohort(COHORT, download, raw)
    assert harmonise_downloaded(COHORT, raw, refetch=hint).n_obs == 100


def test_local_folder_gets_no_refetch_hint(demo_dir, tmp_path):
    raw = tmp_path / "local"
    shutil.copytree(demo_dir / "geo", raw)
    matrix = next(raw.glob("GSE0000_series_matrix.txt.gz"))
    _replace(matrix, gzip.decompress(matrix.read_bytes()).decode().replace("!series_matrix_table_end\n", ""))
    with pytest.raises(InputFormatError) as error:
        harmonise_downloaded(COHORT, raw, refetch=None)
    assert "download_cohort" not in str(error.value)
