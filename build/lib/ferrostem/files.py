"""Atomic writes and checksums: a file that exists under its final name is always complete."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path for writers that want a file name (AnnData, matplotlib); rename on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _publish(tmp: str, target: Path) -> None:
    """mkstemp creates 0600 files; give the result the permissions a plain open() would have."""
    os.chmod(tmp, _umask_mode())
    os.replace(tmp, target)


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_tsv(frame: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False, **to_csv: Any) -> None:
    """Write `frame` as tab-separated UTF-8 text, atomically; `to_csv` passes on (float_format, index_label, ...)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        frame.to_csv(handle, sep="\t", index=index, **to_csv)


def write_json(
    payload: Any, path: str | os.PathLike[str], *, indent: int | None = 1, default: Callable[[Any], Any] | None = None
) -> None:
    """Write `payload` as UTF-8 JSON, atomically (`default` converts what json cannot, as in json.dump)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=indent, default=default)
