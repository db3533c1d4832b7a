"""External resources under a lock (resources/lock.yaml): URL, version, sha256, size, licence, citation.

`url` serves exactly the pinned bytes (a commit-pinned copy); `upstream`, when given, is the canonical URL
those bytes were published at and `note` says how the two relate. `fetch_resource` puts a resource at
`resources/cache/<id>/<filename>` only when its bytes match the lock, and `ensure_cached` checks a cached file
again each time it is used (an edited or damaged file is fetched again, or stops the run naming both sums).
Restricted resources (CIBERSORT LM22, KEGG) are never downloaded: a user points `resources.paths.<id>` at a
licensed copy, which is then used as it is (its sha256 is recorded, not checked against the lock, because
every licensed copy may differ; the cached copy must still equal the user's file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .files import file_digest
from .sources.http import ChecksumError, Client, Expected, link_or_copy

log = logging.getLogger(__name__)

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
    note: str | None = None

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
        for key in ("url", "upstream"):
            if entry.get(key) and not str(entry[key]).startswith(("https://", "http://")):
                raise ConfigError(f"{path}: resource {resource_id!r}: {key} must be an http(s) URL, not "
                                  f"{entry[key]!r} (put remarks under `note`)")
        if entry.get("upstream") and entry.get("upstream") == entry.get("url"):
            raise ConfigError(f"{path}: resource {resource_id!r}: upstream repeats url; give upstream only where "
                              "the pinned bytes come from another URL")
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


def fetch_resource(resource: Resource, target: str | os.PathLike[str], client: Client | None,
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
    if client is None:
        raise ConfigError(f"resource {resource.id!r}: no download client to fetch {resource.url}")
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


def refetch_command(path: str | os.PathLike[str]) -> str:
    """What a user runs to fetch a cached resource again (the rule fetch_resource rebuilds a missing file)."""
    return (f"delete {path} and run the workflow again (rule fetch_resource fetches it; `make prefetch "
            f"CONFIG=<your config>` fetches only the downloads)")


def verify_cached(resource: Resource, path: str | os.PathLike[str], user_copy: str | os.PathLike[str] | None = None) -> None:
    """Check a cached file against the lock (or, for a user's copy, against that copy): size, then sha256.

    Raises ResourceChecksumError naming the file, the expected and actual sums and the command that refetches it.
    """
    path = Path(path)
    if not path.is_file():
        raise ResourceChecksumError(f"resource {resource.id!r}: {path} is missing; "
                                    f"{refetch_command(path)}")
    if user_copy:
        expected_size, expected_sha, origin = Path(user_copy).stat().st_size, file_digest(user_copy), f"your copy {user_copy}"
    else:
        expected_size, expected_sha, origin = resource.size, resource.sha256, "resources/lock.yaml"
    actual_size = path.stat().st_size
    actual_sha = file_digest(path) if expected_sha else None
    if (expected_size is not None and actual_size != expected_size) or (expected_sha and actual_sha != expected_sha):
        actual_sha = actual_sha or file_digest(path)
        raise ResourceChecksumError(
            f"resource {resource.id!r}: the cached file {path} differs from {origin}: size {actual_size} "
            f"(expected {expected_size}), sha256 {actual_sha} (expected {expected_sha}). It was edited or damaged "
            f"after download; to fetch it again, {refetch_command(path)}")


def ensure_cached(resource: Resource, path: str | os.PathLike[str], client: Client | None = None,
                  user_copy: str | os.PathLike[str] | None = None) -> Path:
    """A cached resource, verified before use: an edited or damaged file is replaced (from the user's copy, or
    from `url`/the mirror through `client`) and checked again; without a way to refetch, the error stands."""
    path = Path(path)
    try:
        verify_cached(resource, path, user_copy)
        return path
    except ResourceChecksumError as error:
        if not user_copy and (client is None or resource.restricted or not resource.url):
            raise
        log.warning("%s; fetching it again", error)
    fetch_resource(resource, path, client, user_copy=user_copy)
    verify_cached(resource, path, user_copy)
    return path


def verified_resource_files(files: Mapping[str, Any], client: Client | None = None,
                            user_paths: Mapping[str, str] | None = None,
                            lock: dict[str, Resource] | None = None) -> None:
    """Check every cached resource a job is about to read: `files` maps any key to a cache path or a list of
    them (resources/cache/<id>/<filename>, as `resource_path` in workflow/rules/common.smk gives them)."""
    lock = lock if lock is not None else load_lock()
    user_paths = user_paths or {}
    for value in files.values():
        for cached in ([value] if isinstance(value, (str, os.PathLike)) else list(value)):
            resource_id = Path(cached).parent.name
            resource = get_resource(resource_id, lock)
            if Path(cached).name != resource.filename:
                raise ConfigError(f"{cached}: not the cache path of resource {resource_id!r} ({resource.filename})")
            ensure_cached(resource, cached, client, user_paths.get(resource_id) or None)
