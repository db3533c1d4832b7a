"""External resources under a lock (resources/lock.yaml): URL, version, sha256, size, licence, citation.

`url` serves exactly the pinned bytes (a commit-pinned copy); `upstream`, when given, is the canonical URL
those bytes were published at and `note` says how the two relate. `fetch_resource` puts a resource at
`resources/cache/<id>/<filename>` only when its bytes match the lock, and `ensure_cached` checks a cached file
again each time it is used (an edited or damaged file is fetched again, or stops the run naming both sums).
Restricted resources (CIBERSORT LM22, KEGG) are never downloaded: a user points `resources.paths.<id>` at a
licensed copy, which is then used as it is (its sha256 is recorded, not checked against the lock, because
every licensed copy may differ; the cached copy must still equal the user's file).

`ResourcePlan` decides, per run, which resources the analyses may use: with `resources.fetch: true` (the
default) every non-restricted resource an analysis needs is an input of its job, so Snakemake schedules
`fetch_resource` first; an offline run (`resources.fetch: false`, the demo) uses only the user's copies and
leaves the other resource-backed analyses out, each with a sentence saying why and how to include it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .download import make_client
from .errors import ConfigError
from .files import atomic_path, file_digest
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
                raise ConfigError(
                    f"{path}: resource {resource_id!r}: {key} must be an http(s) URL, not "
                    f"{entry[key]!r} (put remarks under `note`)"
                )
        if entry.get("upstream") and entry.get("upstream") == entry.get("url"):
            raise ConfigError(
                f"{path}: resource {resource_id!r}: upstream repeats url; give upstream only where "
                "the pinned bytes come from another URL"
            )
        resources[resource_id] = Resource(id=resource_id, **entry)
    return resources


def get_resource(resource_id: str, lock: Mapping[str, Resource] | None = None) -> Resource:
    lock = lock if lock is not None else load_lock()
    if resource_id not in lock:
        raise ConfigError(f"resource {resource_id!r} is not in {LOCK_FILE.name}; known: {', '.join(sorted(lock))}")
    return lock[resource_id]


def downloadable(lock: Mapping[str, Resource]) -> list[str]:
    """Resource ids fetched by default (every one not restricted by its licence)."""
    return sorted(i for i, r in lock.items() if not r.restricted)


def fetch_resource(
    resource: Resource,
    target: str | os.PathLike[str],
    client: Client | None,
    user_copy: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Place `resource` at `target`, verified against the lock; returns a provenance record."""
    target = Path(target)
    if user_copy:
        source = Path(user_copy)
        if not source.is_file():
            raise ConfigError(f"resources.paths.{resource.id}: {source} is not a file")
        # a copy, never a link: an in-place edit of the workflow's copy must not reach the user's own file
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        return {"id": resource.id, "source": str(source), "sha256": file_digest(target), "pinned": False}
    if resource.restricted or not resource.url:
        raise ConfigError(
            f"resource {resource.id!r} ({resource.version}) has a restrictive licence ({resource.licence}) and is "
            f"never downloaded; set resources.paths.{resource.id} to your own copy"
        )
    if client is None:
        raise ConfigError(f"resource {resource.id!r}: no download client to fetch {resource.url}")
    try:
        stored = client.fetch(resource.url, Expected(size=resource.size, sha256=resource.sha256), check_gzip=False)
    except ChecksumError as error:
        raise ResourceChecksumError(
            f"resource {resource.id!r}: the downloaded file does not match resources/lock.yaml "
            f"(lock sha256 {resource.sha256}; {error}). If the upstream file changed on purpose, update the lock "
            "after checking it"
        ) from error
    link_or_copy(stored, target)
    return {
        "id": resource.id,
        "source": client.source_of(resource.url),
        "sha256": resource.sha256,
        "pinned": True,
        "version": resource.version,
        "licence": resource.licence,
        "citation": resource.citation,
    }


def refetch_command(path: str | os.PathLike[str]) -> str:
    """What a user runs to fetch a cached resource again (the rule fetch_resource rebuilds a missing file)."""
    return (
        f"delete {path} and run the workflow again (rule fetch_resource fetches it; `make prefetch "
        f"CONFIG=<your config>` fetches only the downloads)"
    )


def verify_cached(
    resource: Resource, path: str | os.PathLike[str], user_copy: str | os.PathLike[str] | None = None
) -> None:
    """Check a cached file against the lock (or, for a user's copy, against that copy): size, then sha256.

    Raises ResourceChecksumError naming the file, the expected and actual sums and the command that refetches it.
    """
    path = Path(path)
    if not path.is_file():
        raise ResourceChecksumError(f"resource {resource.id!r}: {path} is missing; {refetch_command(path)}")
    if user_copy:
        expected_size, expected_sha, origin = (
            Path(user_copy).stat().st_size,
            file_digest(user_copy),
            f"your copy {user_copy}",
        )
    else:
        expected_size, expected_sha, origin = resource.size, resource.sha256, "resources/lock.yaml"
    actual_size = path.stat().st_size
    actual_sha = file_digest(path) if expected_sha else None
    if (expected_size is not None and actual_size != expected_size) or (expected_sha and actual_sha != expected_sha):
        actual_sha = actual_sha or file_digest(path)
        raise ResourceChecksumError(
            f"resource {resource.id!r}: the cached file {path} differs from {origin}: size {actual_size} "
            f"(expected {expected_size}), sha256 {actual_sha} (expected {expected_sha}). It was edited or damaged "
            f"after download; to fetch it again, {refetch_command(path)}"
        )


def ensure_cached(
    resource: Resource,
    path: str | os.PathLike[str],
    client: Client | None = None,
    user_copy: str | os.PathLike[str] | None = None,
) -> Path:
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


def verified_resource_files(
    files: Mapping[str, Any],
    client: Client | None = None,
    user_paths: Mapping[str, str] | None = None,
    lock: dict[str, Resource] | None = None,
) -> None:
    """Check every cached resource a job is about to read: `files` maps any key to a cache path or a list of
    them (resources/cache/<id>/<filename>, as `resource_path` in workflow/rules/common.smk gives them)."""
    lock = lock if lock is not None else load_lock()
    user_paths = user_paths or {}
    for value in files.values():
        for cached in [value] if isinstance(value, (str, os.PathLike)) else list(value):
            resource_id = Path(cached).parent.name
            resource = get_resource(resource_id, lock)
            if Path(cached).name != resource.filename:
                raise ConfigError(f"{cached}: not the cache path of resource {resource_id!r} ({resource.filename})")
            ensure_cached(resource, cached, client, user_paths.get(resource_id) or None)


def verify_job_resources(
    files: Mapping[str, Any], download: Mapping[str, Any], user_paths: Mapping[str, str] | None = None
) -> None:
    """What a job rule does with its `resource_files`: verified_resource_files, with a download client made from
    the rule's `download` settings for a cached file that must be fetched again; nothing when there are none."""
    if files:
        verified_resource_files(files, make_client(download, progress=False), user_paths)


FETCH_KEY = "resources.fetch"


@dataclass(frozen=True)
class ResourcePlan:
    """Which locked resources this run may use: downloaded ones when `fetch` is on, and the user's copies."""

    lock: Mapping[str, Resource]
    fetch: bool = True
    user_paths: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], lock: Mapping[str, Resource] | None = None) -> ResourcePlan:
        block = config.get("resources") or {}
        return cls(
            lock=lock if lock is not None else load_lock(),
            fetch=bool(block.get("fetch", True)),
            user_paths=dict(block.get("paths") or {}),
        )

    def why_left_out(self, resource_ids: Sequence[str]) -> str | None:
        """None when every resource can be used; else one sentence naming those that cannot, why, and how to
        include them (the report shows it beside the analysis that was left out)."""
        resources = [get_resource(i, self.lock) for i in resource_ids]
        mine = [r for r in resources if r.id not in self.user_paths]
        restricted = [r for r in mine if r.restricted or not r.url]
        offline = [r for r in mine if r not in restricted and not self.fetch]
        reasons = []
        if offline:
            names = ", ".join(r.id for r in offline)
            them = "it" if len(offline) == 1 else "them"
            reasons.append(
                f"{_plural('resource', offline)} {names} not fetched: this run is offline ({FETCH_KEY}: false); "
                f"to include {them}, set {FETCH_KEY}: true (the default) and the workflow fetches and verifies "
                f"{them} from resources/lock.yaml (url, or the mirror); on a cluster without network, run "
                "`make prefetch CONFIG=<your config>` on a node with network first"
            )
        for resource in restricted:
            reasons.append(
                f"resource {resource.id} has a restrictive licence ({resource.licence}) and is never downloaded; "
                f"to include it, set resources.paths.{resource.id} to your own licensed copy"
            )
        return "; ".join(reasons) or None

    def split(self, needs: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """For analyses keyed by name, each needing some resource ids: ({name: cache paths} of those this run
        can do, {name: why left out} of the others)."""
        usable: dict[str, list[str]] = {}
        left_out: dict[str, str] = {}
        for name, resource_ids in needs.items():
            reason = self.why_left_out(resource_ids)
            if reason:
                left_out[name] = reason
            else:
                usable[name] = [str(get_resource(i, self.lock).cache_path()) for i in resource_ids]
        return usable, left_out

    def prefetch_ids(self, wanted: str | Sequence[str]) -> list[str]:
        """What `make prefetch` fetches: the listed (or all) downloadable resources when fetching is on, plus
        every resource the user has a copy of."""
        ids = (downloadable(self.lock) if wanted == "all" else list(wanted)) if self.fetch else []
        return ids + [i for i in self.user_paths if i not in ids]


def _plural(word: str, items: Sequence[Any]) -> str:
    return word if len(items) == 1 else f"{word}s"
