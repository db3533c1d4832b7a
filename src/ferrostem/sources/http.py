"""One download client for every source: HTTP(S) or a mirror, verified, resumable, never half-written.

Every file lands in a *store* laid out like the remote (`{store}/{host}/{path}`), which is also the
layout of a mirror: copy a store to an air-gapped node and point `mirror:` at it (a directory, or any
static web server publishing it). Guarantees:

- a file gets its final name only after it is complete and verified (size, md5, sha256 when known; a
  `.gz` file is also read to its end), by an atomic rename; until then it is `<name>.part`;
- an interrupted download resumes from its `.part` with an HTTP `Range` request when the server
  honours it (206), and restarts otherwise;
- timeouts, connection resets, truncated bodies, 429 and 5xx are retried with exponential backoff;
  other 4xx, and checksums that still differ after the retries, end in an error naming the URL;
- a file already in the store and matching its expected checksum is never fetched again.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import html.parser
import json
import logging
import os
import shutil
import sys
import time
import urllib.parse
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from tqdm import tqdm

from ..config import settings_from_block
from ..errors import FerrostemError
from ..progress import ProgressReport
from ..files import write_json

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 20
NET_CHUNK = 1 << 16  # small network reads: a cut connection loses at most this much


class DownloadError(FerrostemError):
    """A download failed for good: the message names the URL (and the mirror path) and why."""


class NotFoundError(DownloadError):
    """The source (or the mirror) does not have this file (HTTP 404/410, or absent from a mirror directory)."""


class ChecksumError(DownloadError):
    """The bytes received do not match the expected size or checksum."""


class _Retryable(Exception):
    """A transient failure worth another attempt (kept internal; callers see DownloadError)."""


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must match; None means unknown (then only completeness is checked)."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("size", self.size), ("md5", self.md5), ("sha256", self.sha256)) if v]
        return ", ".join(parts) or "no checksum"


@dataclass
class RetryPolicy:
    attempts: int = 6
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time
    max_backoff: float = 60.0
    connect_timeout: float = 15.0
    read_timeout: float = 120.0

    def delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, ignore: Collection[str] = ()) -> RetryPolicy:
        """The retry keys of the `download:` block (the schema fills their defaults); `ignore`: the block's
        other keys, which configure the sources."""
        return settings_from_block(cls, values, "download", ignore=ignore)


def store_relpath(url: str) -> str:
    """Where a URL lives in a store or mirror: `{host}/{path}`.

    A query such as NCBI's `.../geo/download/?acc=GSE1&file=GSE1_raw_counts.tsv.gz` is stored under the
    `file=` value (`www.ncbi.nlm.nih.gov/geo/download/GSE1_raw_counts.tsv.gz`); any other query is kept, its
    parameters sorted, as the last name (`.../geo/query/acc.cgi?targ=self&acc=GPL1&form=text&view=full` ->
    `www.ncbi.nlm.nih.gov/geo/query/acc.cgi/acc=GPL1&form=text&targ=self&view=full`), so that answers to
    different queries never share a file; a trailing slash (a directory listing) maps to the directory itself.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in {"http", "https", "ftp"} or not parsed.netloc:
        raise DownloadError(f"{url!r} is not an http(s) or ftp URL")
    path = urllib.parse.unquote(parsed.path).lstrip("/")
    query = urllib.parse.parse_qs(parsed.query)
    if "file" in query:
        path = f"{path.rstrip('/')}/{query['file'][0]}"
    elif query:
        pairs = sorted(urllib.parse.parse_qsl(parsed.query))
        path = f"{path.rstrip('/')}/" + "&".join(f"{k}={v}" for k, v in pairs)
    parts = [p for p in f"{parsed.hostname}/{path}".split("/") if p]
    if any(p in {".", ".."} for p in parts):
        raise DownloadError(f"{url!r}: '.' or '..' in the path cannot be stored safely")
    return "/".join(parts)


def _verify_gzip(path: Path) -> None:
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise ChecksumError(f"corrupt gzip data ({error})") from error


def _hashers(expected: Expected) -> dict[str, Any]:
    """The hashlib objects `expected` asks for, by name (md5, sha256)."""
    return {name: hashlib.new(name) for name in ("md5", "sha256") if getattr(expected, name)}


def copy_hashing(source: Path, target: Path, expected: Expected) -> dict[str, str]:
    """Copy `source` to `target` and hash the bytes on the way (the checksums `expected` has), in one pass:
    verify_file(target, expected, digests=...) then needs no second read of the copy."""
    hashers = _hashers(expected)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while size := reader.readinto(buffer):
            chunk = view[:size]
            writer.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def verify_file(
    path: Path, expected: Expected, *, check_gzip: bool | None = None, digests: Mapping[str, str] | None = None
) -> None:
    """Raise ChecksumError if `path` differs from `expected` (or is a broken gzip when it should be one).

    `digests`: the file's checksums by name, computed as it was written (copy_hashing); the file is then not
    read again for them."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise ChecksumError(f"size {size} bytes, expected {expected.size}")
    if expected.md5 or expected.sha256:
        if digests is None:
            hashers = _hashers(expected)
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    for hasher in hashers.values():
                        hasher.update(chunk)
            digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        if expected.md5 and digests["md5"] != expected.md5.lower():
            raise ChecksumError(f"md5 {digests['md5']}, expected {expected.md5}")
        if expected.sha256 and digests["sha256"] != expected.sha256.lower():
            raise ChecksumError(f"sha256 {digests['sha256']}, expected {expected.sha256}")
    if check_gzip is None:
        check_gzip = path.name.endswith(".gz") and not (expected.md5 or expected.sha256)
    if check_gzip:
        _verify_gzip(path)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` to `target` (same bytes, no space), copying across file systems; atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.link.part")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def page_links(text: str) -> list[str]:
    """The href of every <a> of an HTML page, in page order (entities such as &amp; decoded)."""
    parser = _Links()
    parser.feed(text)
    return parser.links


class _Counter:
    """The `update(n)` interface of a tqdm bar (what fetch() and the GDC batches call), feeding a report."""

    def __init__(self, update: Callable[[int], None]) -> None:
        self.update = update


@dataclass
class Client:
    """Fetch URLs into `store` (remote layout), from the source or from `mirror` (directory or URL)."""

    store: Path
    mirror: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool = True
    progress_interval: float = 15.0  # seconds between progress lines in a job log
    workers: int = 1  # threads copying and checksumming many files from a local mirror (GDC's STAR files)
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.store = Path(self.store)
        self.session.headers.setdefault("User-Agent", "ferrostem (https://github.com/ferrostem)")
        self.fetched: list[str] = []  # URLs (or mirror paths) actually read, for provenance

    # -- where things are -------------------------------------------------------------------
    @property
    def mirror_is_local(self) -> bool:
        return bool(self.mirror) and not str(self.mirror).startswith(("http://", "https://"))

    def store_path(self, url: str) -> Path:
        return self.store / store_relpath(url)

    def source_of(self, url: str) -> str:
        """The URL or local path the bytes of `url` are read from (the mirror's copy when configured)."""
        if not self.mirror:
            return url
        relative = store_relpath(url)
        if self.mirror_is_local:
            return str(Path(self.mirror) / relative)
        return f"{str(self.mirror).rstrip('/')}/{urllib.parse.quote(relative)}"

    def _where(self, url: str) -> str:
        source = self.source_of(url)
        return url if source == url else f"{url} (mirror: {source})"

    # -- files ------------------------------------------------------------------------------
    def fetch(
        self,
        url: str,
        expected: Expected | None = None,
        *,
        target: Path | None = None,
        check_gzip: bool | None = None,
        bar: tqdm | None = None,
    ) -> Path:
        """Make `url`'s bytes available at `target` (default: its store path) and return that path."""
        expected = expected or Expected()
        final = Path(target) if target is not None else self.store_path(url)
        if final.is_file():
            try:
                verify_file(final, expected, check_gzip=False)
                return final
            except ChecksumError as error:
                log.warning("%s: stored copy differs (%s); fetching again", final, error)
                final.unlink()
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        if check_gzip is None:
            check_gzip = final.name.endswith(".gz") and not (expected.md5 or expected.sha256)
        source = self.source_of(url)

        def attempt() -> Path:
            digests = None
            if self.mirror_is_local:
                digests = self._copy_local(Path(source), part, url, expected)
                if bar is not None:
                    bar.update(part.stat().st_size)
            else:
                self._download(source, part, bar)
            try:
                verify_file(part, expected, check_gzip=check_gzip, digests=digests)
            except ChecksumError:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()  # a wrong body cannot be resumed
                raise
            os.replace(part, final)
            self.fetched.append(source)
            return final

        def give_up(error: Exception, attempts: int) -> DownloadError:
            if isinstance(error, ChecksumError):
                return ChecksumError(
                    f"{self._where(url)}: {error} (after {attempts} attempts; expected "
                    f"{expected.describe()}); nothing was kept under {final}"
                )
            return DownloadError(f"{self._where(url)}: failed after {attempts} attempts: {error}")

        # a local mirror's file will not change between attempts, so a wrong one is not tried again
        return self._with_retries(
            self._where(url),
            attempt,
            retry_on=(_Retryable, ChecksumError),
            final=lambda error: self.mirror_is_local and isinstance(error, ChecksumError),
            give_up=give_up,
        )

    def _with_retries(
        self,
        where: str,
        attempt: Callable[[], _T],
        *,
        retry_on: tuple[type[Exception], ...] = (_Retryable,),
        final: Callable[[Exception], bool] = lambda error: False,
        give_up: Callable[[Exception, int], DownloadError] | None = None,
    ) -> _T:
        """Call `attempt` up to `policy.attempts` times, sleeping `policy.delay` between tries. A failure in `retry_on`
        is retried unless `final(error)`; the last one becomes `give_up(error, attempts)` (default: a DownloadError
        naming `where`). Other exceptions (NotFoundError, a permanent HTTP error) pass through at once."""
        attempts = self.policy.attempts
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except retry_on as error:
                if number == attempts or final(error):
                    failure = (
                        give_up(error, number)
                        if give_up is not None
                        else DownloadError(f"{where}: failed after {number} attempts: {error}")
                    )
                    raise failure from error
                delay = self.policy.delay(number)
                log.warning("%s: attempt %d/%d failed (%s); retrying in %.1f s", where, number, attempts, error, delay)
                self.sleep(delay)
        raise DownloadError(f"{where}: no attempt made (RetryPolicy.attempts is {attempts})")

    def _copy_local(self, source: Path, part: Path, url: str, expected: Expected) -> dict[str, str]:
        """A copy of the mirror's file at `part`, never a hard link: the store's files are the user's to edit or
        delete, and an edit in place would reach the mirror's file through a link (a mirror of symlinks into a
        reference folder included). Returns the copy's checksums that `expected` asks for, computed while
        copying (one read of the mirror's file instead of a copy and a second read of the copy)."""
        if not source.is_file():
            raise NotFoundError(f"{url}: not in the mirror (looked for {source})")
        return copy_hashing(source, part, expected)

    def _open(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request; transient failures become _Retryable, permanent ones DownloadError."""
        try:
            response = self.session.request(
                method, url, timeout=(self.policy.connect_timeout, self.policy.read_timeout), **kwargs
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            raise _Retryable(f"{type(error).__name__}: {error}") from error
        if response.status_code in RETRY_STATUS:
            response.close()
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code in {404, 410}:
            response.close()
            raise NotFoundError(f"{url}: HTTP {response.status_code} {response.reason}")
        if response.status_code >= 400 and response.status_code != 416:
            response.close()
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        return response

    def _download(self, url: str, part: Path, bar: tqdm | None) -> None:
        have = part.stat().st_size if part.is_file() else 0
        headers = (
            {"Range": f"bytes={have}-", "Accept-Encoding": "identity"} if have else {"Accept-Encoding": "identity"}
        )
        response = self._open("GET", url, headers=headers, stream=True)
        with response:
            if response.status_code == 416:  # the part may already hold every byte
                return
            if response.status_code == 206:
                start = int(response.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
                if start != have:
                    raise _Retryable(f"server resumed at byte {start}, not {have}")
                mode = "ab"
            else:
                have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            expected_end = have + int(length) if length is not None else None
            written = have
            single = None
            if bar is None and self.progress and not sys.stderr.isatty():  # a long single file says how it goes
                single = ProgressReport(
                    Path(urllib.parse.urlparse(url).path).name or url,
                    transfer=True,
                    total_bytes=int(length) if length is not None else None,
                    interval=self.progress_interval,
                    always=False,
                    logger=log,
                )
                bar = _Counter(single.add_bytes)
            try:
                with open(part, mode) as handle:
                    for chunk in response.iter_content(NET_CHUNK):
                        handle.write(chunk)
                        written += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, requests.Timeout) as error:
                raise _Retryable(f"connection lost after {written} bytes ({type(error).__name__})") from error
            finally:
                if single is not None:
                    single.close()
            if expected_end is not None and written < expected_end:
                raise _Retryable(f"body truncated at {written} of {expected_end} bytes")

    # -- API calls --------------------------------------------------------------------------
    def request_json(self, url: str, *, body: Mapping[str, Any] | None = None) -> Any:
        """GET (or POST `body` as JSON) and parse the JSON answer, retrying transient failures."""

        def attempt() -> Any:
            with self._open("POST" if body is not None else "GET", url, json=body) as response:
                try:
                    payload = response.json()
                except (ValueError, requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as error:
                    raise _Retryable(f"incomplete or invalid JSON ({error})") from error
            self.fetched.append(url)
            return payload

        return self._with_retries(url, attempt)

    def post_to_file(self, url: str, body: Mapping[str, Any], part: Path) -> None:
        """POST `body` and stream the answer into `part` (no resume: POST answers are not addressable)."""

        def attempt() -> None:
            try:
                with self._open("POST", url, json=body, stream=True) as response, open(part, "wb") as handle:
                    length = response.headers.get("Content-Length")
                    written = 0
                    try:
                        for chunk in response.iter_content(NET_CHUNK):
                            handle.write(chunk)
                            written += len(chunk)
                    except (
                        requests.exceptions.ChunkedEncodingError,
                        requests.ConnectionError,
                        requests.Timeout,
                    ) as error:
                        raise _Retryable(f"connection lost after {written} bytes") from error
                    if length is not None and written < int(length):
                        raise _Retryable(f"body truncated at {written} of {length} bytes")
            except _Retryable:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
                raise
            self.fetched.append(url)

        self._with_retries(url, attempt)

    def save_json(self, payload: Any, url: str) -> Path:
        """Keep an API answer in the store under `url`'s path, so the store doubles as a mirror."""
        path = self.store_path(url)
        write_json(payload, path)
        return path

    def read_json(self, url: str) -> Any:
        """A static JSON document (from the source or the mirror), stored and parsed."""
        path = self.fetch(url, check_gzip=False)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            path.unlink()
            raise DownloadError(f"{self._where(url)}: not valid JSON ({error})") from error

    def list_directory(self, url: str) -> list[str]:
        """File names in a remote directory (an HTML index such as GEO's FTP-over-HTTPS, or the mirror's)."""
        source = self.source_of(url if url.endswith("/") else url + "/")
        if self.mirror_is_local:
            folder = Path(source)
            if not folder.is_dir():
                raise DownloadError(f"{url}: not in the mirror (looked for directory {folder})")
            return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part"))

        def attempt() -> list[str]:
            with self._open("GET", source) as response:
                links = page_links(response.text)
            names = [urllib.parse.unquote(h.split("?")[0].rstrip("/").rsplit("/", 1)[-1]) for h in links]
            return sorted({n for n in names if n and not n.startswith((".", "?"))})

        return self._with_retries(f"{self._where(url)}: directory listing", attempt)

    @contextlib.contextmanager
    def progress_bars(self, files: int, total_bytes: int | None, label: str) -> Iterator[tuple[Any, Any]]:
        """Progress of a multi-file transfer: two tqdm bars (files, bytes) on a terminal; elsewhere (a rule's
        log, a cluster job) plain ProgressReport lines at intervals. Nothing when progress is off."""
        if self.progress and not sys.stderr.isatty():
            report = ProgressReport(
                label,
                files,
                unit="files",
                total_bytes=total_bytes,
                transfer=True,
                interval=self.progress_interval,
                logger=log,
            )
            try:
                yield _Counter(report.add), _Counter(report.add_bytes)
            finally:
                report.close()
            return
        disable = None if self.progress else True
        with (
            tqdm(total=files, desc=f"{label} files", unit="file", disable=disable, position=0) as file_bar,
            tqdm(
                total=total_bytes, desc=f"{label} bytes", unit="B", unit_scale=True, disable=disable, position=1
            ) as byte_bar,
        ):
            yield file_bar, byte_bar
