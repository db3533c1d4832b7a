"""External resources under a lock (resources/lock.yaml): URL, version, sha256, size, licence, citation.

`fetch_resource` puts a resource at `resources/cache/<id>/<filename>` only when its bytes match the
lock. Restricted resources (CIBERSORT LM22, KEGG) are never downloaded: a user points
`resources.paths.<id>` at a licensed copy, which is then used as it is (its sha256 is recorded, not checked,
because every licensed copy may differ).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .files import file_digest
from .sources.http import ChecksumError, Client, Expected, link_or_copy

LOCK_FILE = Path(__file__).resolve().parents[2] / "resources" / "lock.yaml"
CACHE_DIR = "resources/cache"
REQUIRED_FIELDS = ("filename", "version", "licence", "citation")


class ResourceChecksumError(ChecksumError):
    """A resource's bytes differ from the lock: the message names the resource and both sha256 sums."""


@dataclass(frozen=True)
class Resource:
    id: str
    filename: str
    version: str
    licence: str
    citation: str
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    restricted: bool = False
    upstream: str | None = None

    def cache_path(self, root: str | os.PathLike[str] = ".") -> Path:
        return Path(root) / CACHE_DIR / self.id / self.filename


def load_lock(path: str | os.PathLike[str] = LOCK_FILE) -> dict[str, Resource]:
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    resources = {}
    for resource_id, entry in (document.get("resources") or {}).items():
        missing = [f for f in REQUIRED_FIELDS if not entry.get(f)]
        if not entry.get("restricted"):
            missing += [f for f in ("url", "sha256", "size") if not entry.get(f)]
        if missing:
            raise ConfigError(f"{path}: resource {resource_id!r} lacks {missing}")
        unknown = set(entry) - set(Resource.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{path}: resource {resource_id!r} has unknown fields {sorted(unknown)}")
        resources[resource_id] = Resource(id=resource_id, **entry)
    return resources


def get_resource(resource_id: str, lock: dict[str, Resource] | None = None) -> Resource:
    lock = lock if lock is not None else load_lock()
    if resource_id not in lock:
        raise ConfigError(f"resource {resource_id!r} is not in {LOCK_FILE.name}; known: {', '.join(sorted(lock))}")
    return lock[resource_id]


def downloadable(lock: dict[str, Resource]) -> list[str]:
    """Resource ids fetched by default (every one not restricted by its licence)."""
    return sorted(i for i, r in lock.items() if not r.restricted)


def fetch_resource(resource: Resource, target: str | os.PathLike[str], client: Client,
                   user_copy: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Place `resource` at `target`, verified against the lock; returns a provenance record."""
    target = Path(target)
    if user_copy:
        source = Path(user_copy)
        if not source.is_file():
            raise ConfigError(f"resources.paths.{resource.id}: {source} is not a file")
        link_or_copy(source, target)
        return {"id": resource.id, "source": str(source), "sha256": file_digest(target), "pinned": False}
    if resource.restricted or not resource.url:
        raise ConfigError(
            f"resource {resource.id!r} ({resource.version}) has a restrictive licence ({resource.licence}) and is "
            f"never downloaded; set resources.paths.{resource.id} to your own copy")
    try:
        stored = client.fetch(resource.url, Expected(size=resource.size, sha256=resource.sha256), check_gzip=False)
    except ChecksumError as error:
        raise ResourceChecksumError(
            f"resource {resource.id!r}: the downloaded file does not match resources/lock.yaml "
            f"(lock sha256 {resource.sha256}; {error}). If the upstream file changed on purpose, update the lock "
            "after checking it") from error
    link_or_copy(stored, target)
    return {"id": resource.id, "source": client.source_of(resource.url), "sha256": resource.sha256, "pinned": True,
            "version": resource.version, "licence": resource.licence, "citation": resource.citation}


def verify_cached(resource: Resource, path: str | os.PathLike[str]) -> None:
    """Check a file already in the cache against the lock (raises ResourceChecksumError naming both sums)."""
    actual = file_digest(path)
    if resource.sha256 and actual != resource.sha256:
        raise ResourceChecksumError(
            f"resource {resource.id!r}: {path} has sha256 {actual}, the lock says {resource.sha256}")
