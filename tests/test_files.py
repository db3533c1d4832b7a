import os

import pytest

from ferrostem.files import atomic_path, atomic_write, file_digest


def test_atomic_write_publishes_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as handle:
        handle.write("whole")
    assert target.read_text() == "whole"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_atomic_path_cleans_up(tmp_path):
    target = tmp_path / "x.h5ad"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_digest(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"abc")
    assert file_digest(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert file_digest(path).startswith("ba7816bf")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
