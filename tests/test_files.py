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


def test_write_tsv_and_json_are_atomic_and_keep_the_format(tmp_path):
    import json

    import pandas as pd

    from ferrostem.files import write_json, write_tsv

    frame = pd.DataFrame({"gene": ["A", "B"], "value": [0.123456789, None]}, index=["s1", "s2"])
    write_tsv(frame, tmp_path / "t.tsv", float_format="%.3g")
    assert (tmp_path / "t.tsv").read_text() == "gene\tvalue\nA\t0.123\nB\t\n"
    write_tsv(frame, tmp_path / "i.tsv", index=True, index_label="sample_id")
    assert (tmp_path / "i.tsv").read_text().splitlines()[0] == "sample_id\tgene\tvalue"
    write_json({"x": "set", "é": 1}, tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == '{\n "x": "set",\n "\\u00e9": 1\n}'
    write_json({"p": tmp_path}, tmp_path / "b.json", indent=None, default=str)
    assert json.loads((tmp_path / "b.json").read_text()) == {"p": str(tmp_path)}
    with pytest.raises(TypeError):
        write_json({"p": tmp_path}, tmp_path / "c.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "i.tsv", "t.tsv"]
