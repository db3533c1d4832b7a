"""The download client against a loopback server: success, retries, resume and every fault it must survive."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from download_server import LoopbackServer, gzip_bytes

from ferrostem.errors import InputFormatError
from ferrostem.sources import gdc
from ferrostem.sources.http import (
    ChecksumError,
    Client,
    DownloadError,
    Expected,
    NotFoundError,
    RetryPolicy,
    copy_hashing,
    store_relpath,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value


def quick_client(store: Path, mirror: str | None = None, attempts: int = 4, read_timeout: float = 0.5) -> Client:
    policy = RetryPolicy(attempts=attempts, backoff=0.0, connect_timeout=1.0, read_timeout=read_timeout)
    return Client(store=store, mirror=mirror, policy=policy, progress=False, sleep=lambda s: None)


@pytest.fixture()
def server(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "blob.bin").write_bytes(PAYLOAD)
    (root / "table.tsv.gz").write_bytes(gzip_bytes("a\tb\n" + "1\t2\n" * 50_000))
    with LoopbackServer(root) as srv:
        yield srv


def expected_of(data: bytes) -> Expected:
    return Expected(size=len(data), md5=hashlib.md5(data).hexdigest())


def no_leftovers(store: Path) -> list[str]:
    return [str(p) for p in store.rglob("*") if p.name.endswith(".part")]


def test_store_layout_follows_the_remote():
    assert (
        store_relpath("https://ftp.ncbi.nlm.nih.gov/geo/series/GSE14nnn/GSE14520/matrix/")
        == "ftp.ncbi.nlm.nih.gov/geo/series/GSE14nnn/GSE14520/matrix"
    )
    assert (
        store_relpath("https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSE1&format=file&file=GSE1_raw.tsv.gz")
        == "www.ncbi.nlm.nih.gov/geo/download/GSE1_raw.tsv.gz"
    )
    with pytest.raises(DownloadError, match=r"\.\."):
        store_relpath("https://example.org/a/../../etc/passwd")


@pytest.mark.parametrize("faults", [["500", "503"], ["429"], ["timeout"], ["reset"], ["truncate"]])
def test_transient_faults_recover(server: LoopbackServer, tmp_path: Path, faults: list[str]):
    server.faults["/blob.bin"] = list(faults)
    client = quick_client(tmp_path / "store")
    path = client.fetch(server.url + "/blob.bin", expected_of(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert server.count("/blob.bin") == len(faults) + 1
    assert no_leftovers(tmp_path / "store") == []


def test_cut_body_resumes_with_range(server: LoopbackServer, tmp_path: Path):
    server.faults["/blob.bin"] = ["reset"]
    quick_client(tmp_path / "store").fetch(server.url + "/blob.bin", expected_of(PAYLOAD))
    ranges = [h.get("Range") for m, p, h in server.requests if p == "/blob.bin"]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    resumed_at = int(ranges[1][6:-1])
    assert 0 < resumed_at <= len(PAYLOAD) // 2


def test_verified_file_is_not_fetched_again(server: LoopbackServer, tmp_path: Path):
    client = quick_client(tmp_path / "store")
    client.fetch(server.url + "/blob.bin", expected_of(PAYLOAD))
    client.fetch(server.url + "/blob.bin", expected_of(PAYLOAD))
    assert server.count("/blob.bin") == 1


def test_md5_mismatch_is_an_error_naming_the_url_and_leaves_nothing(server: LoopbackServer, tmp_path: Path):
    client = quick_client(tmp_path / "store", attempts=2)
    wrong = Expected(size=len(PAYLOAD), md5="0" * 32)
    with pytest.raises(ChecksumError) as error:
        client.fetch(server.url + "/blob.bin", wrong)
    assert server.url + "/blob.bin" in str(error.value) and "md5" in str(error.value)
    assert not client.store_path(server.url + "/blob.bin").exists()
    assert no_leftovers(tmp_path / "store") == []


def test_persistent_5xx_ends_in_an_error(server: LoopbackServer, tmp_path: Path):
    server.faults["/blob.bin"] = ["503"] * 3
    with pytest.raises(DownloadError, match="blob.bin.*HTTP 503"):
        quick_client(tmp_path / "store", attempts=3).fetch(server.url + "/blob.bin")


def test_corrupt_gzip_is_refused(server: LoopbackServer, tmp_path: Path):
    server.faults["/table.tsv.gz"] = ["corrupt"] * 4
    client = quick_client(tmp_path / "store")
    with pytest.raises(ChecksumError, match=r"table\.tsv\.gz.*corrupt gzip"):
        client.fetch(server.url + "/table.tsv.gz")
    assert not client.store_path(server.url + "/table.tsv.gz").exists()
    assert no_leftovers(tmp_path / "store") == []
    server.faults.clear()
    assert gzip.decompress(client.fetch(server.url + "/table.tsv.gz").read_bytes()).startswith(b"a\tb\n")


def test_missing_file_names_the_url(server: LoopbackServer, tmp_path: Path):
    with pytest.raises(NotFoundError, match="nothing.txt"):
        quick_client(tmp_path / "store").fetch(server.url + "/nothing.txt")


def test_local_mirror_directory(server: LoopbackServer, tmp_path: Path):
    mirror = tmp_path / "mirror"
    (mirror / "example.org" / "x").mkdir(parents=True)
    (mirror / "example.org" / "x" / "blob.bin").write_bytes(PAYLOAD)
    client = quick_client(tmp_path / "store", mirror=str(mirror))
    path = client.fetch("https://example.org/x/blob.bin", expected_of(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert client.list_directory("https://example.org/x/") == ["blob.bin"]
    with pytest.raises(NotFoundError, match="example.org/x/other.bin"):
        client.fetch("https://example.org/x/other.bin")
    (mirror / "example.org" / "x" / "bad.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ChecksumError, match="size"):
        client.fetch("https://example.org/x/bad.bin", expected_of(PAYLOAD))


def test_editing_the_stores_copy_in_place_never_changes_the_mirror(tmp_path: Path):
    """The store holds a copy of a local mirror's file, not a link to it: a user (or a test) that rewrites the
    cached file in place leaves the mirror, and whatever a mirror symlink points at, as it was. A hard link once
    carried such an edit into ../shared/reference through a symlinked test mirror."""
    reference = tmp_path / "reference" / "blob.bin"
    reference.parent.mkdir()
    reference.write_bytes(PAYLOAD)
    folder = tmp_path / "mirror" / "example.org" / "x"
    folder.mkdir(parents=True)
    (folder / "blob.bin").symlink_to(reference)
    client = quick_client(tmp_path / "store", mirror=str(tmp_path / "mirror"))
    path = client.fetch("https://example.org/x/blob.bin", expected_of(PAYLOAD))
    assert path.read_bytes() == PAYLOAD and path.stat().st_ino != reference.stat().st_ino
    path.write_bytes(PAYLOAD[:-1] + b"?")  # same size, edited in place
    assert reference.read_bytes() == PAYLOAD


def test_http_mirror_and_directory_index(server: LoopbackServer, tmp_path: Path):
    (server.root / "example.org" / "d").mkdir(parents=True)
    (server.root / "example.org" / "d" / "f1.txt").write_text("one")
    client = quick_client(tmp_path / "store", mirror=server.url)
    assert client.list_directory("https://example.org/d/") == ["f1.txt"]
    assert client.fetch("https://example.org/d/f1.txt").read_text() == "one"


def test_every_request_kind_retries_with_the_same_policy_and_logs_each_retry(
    server: LoopbackServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    (server.root / "d").mkdir()
    (server.root / "d" / "f1.txt").write_text("one")
    client = quick_client(tmp_path / "store", attempts=3)
    status, data, listing = server.gdc_api + "/status", server.gdc_api + "/data", server.url + "/d/"
    for path in ("/gdcapi/status", "/gdcapi/data", "/d/"):
        server.faults[path] = ["503", "reset" if path == "/gdcapi/data" else "429"]
    caplog.set_level("WARNING", logger="ferrostem.sources.http")
    assert client.request_json(status)["status"] == "OK"
    part = tmp_path / "answer.part"
    client.post_to_file(data, {"ids": []}, part)
    assert tarfile.open(part).getnames() == ["MANIFEST.txt"]
    assert client.list_directory(listing) == ["f1.txt"]
    for url in (status, data, listing):
        retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith(url)]
        assert [m.split(": attempt ")[1][:3] for m in retries] == ["1/3", "2/3"], (url, retries)
    for path in ("/gdcapi/status", "/gdcapi/data", "/d/"):
        server.faults[path] = ["503"] * 3
    for call in (
        lambda: client.request_json(status),
        lambda: client.post_to_file(data, {"ids": []}, part),
        lambda: client.list_directory(listing),
    ):
        with pytest.raises(DownloadError, match=r"failed after 3 attempts: HTTP 503"):
            call()
    assert not part.exists()


def _tar_with(member: tarfile.TarInfo, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name,kind",
    [("../escape.txt", tarfile.REGTYPE), ("/etc/escape.txt", tarfile.REGTYPE), ("abc/link", tarfile.SYMTYPE)],
)
def test_unsafe_tar_members_are_refused(tmp_path: Path, name: str, kind: bytes):
    member = tarfile.TarInfo(name)
    member.type = kind
    data = b"" if kind == tarfile.SYMTYPE else b"owned"
    member.size = len(data)
    if kind == tarfile.SYMTYPE:
        member.linkname = "/etc/passwd"
    archive = tmp_path / "batch.tar.gz"
    archive.write_bytes(_tar_with(member, data))
    client = quick_client(tmp_path / "store")
    with pytest.raises(InputFormatError, match=r"https://api.example/data.*" + name.split("/")[-1]):
        gdc.extract_batch(client, archive, "https://api.example/data", {}, "https://api.example")
    assert not (tmp_path / "escape.txt").exists() and not list((tmp_path / "store").rglob("*escape*"))


def test_progress_lines_give_files_bytes_rate_and_eta_at_intervals():
    import io

    from ferrostem.progress import ProgressReport

    now = [0.0]
    terminal = io.StringIO()
    report = ProgressReport(
        "GDC",
        4,
        unit="files",
        total_bytes=400_000_000,
        transfer=True,
        interval=10,
        clock=lambda: now[0],
        terminal=terminal,
    )
    assert report.lines == ["GDC: starting, 4 files, 400.0 MB"]
    now[0] = 5.0
    report.add_bytes(50_000_000)  # before the interval: no line
    assert len(report.lines) == 1
    now[0] = 10.0
    report.add_bytes(50_000_000)
    report.add(1)
    assert report.lines[1] == "GDC: 0/4 files, 100.0 MB of 400.0 MB (25%), 10.0 MB/s, ETA 30 s"
    now[0] = 40.0
    report.add_bytes(300_000_000)
    report.add(3)
    report.close()
    assert report.lines[-1] == "GDC: 4/4 files, 400.0 MB of 400.0 MB (100%), 10.0 MB/s, done in 40 s"
    # the terminal the job was started from (Snakemake's, or the cluster job's output) gets the same lines
    assert terminal.getvalue().splitlines()[1] == "[ferrostem] " + report.lines[1]
    quiet = ProgressReport(
        "x.tsv.gz", total_bytes=10, transfer=True, interval=10, always=False, clock=lambda: 0.0, terminal=terminal
    )
    quiet.add_bytes(10)
    quiet.close()
    assert quiet.lines == []  # a short single file stays silent


def test_gdc_download_reports_progress_lines_in_a_log(tmp_path, demo_dir, caplog):
    import logging

    from ferrostem.download import download_cohort, settings

    with caplog.at_level(logging.INFO, logger="ferrostem"):
        download = settings({"mirror": str(demo_dir / "mirror"), "download": {"store": str(tmp_path / "store")}})
        download_cohort({"source": "gdc", "project": "TCGA-DEMO", "simulated": True}, download, tmp_path / "raw")
    lines = [r.getMessage() for r in caplog.records if r.name == "ferrostem.sources.http"]
    assert lines[0].startswith("GDC: starting, 123 files, ")
    assert lines[-1].startswith("GDC: 123/123 files, 83.3 MB of 83.3 MB (100%), ") and "done in" in lines[-1]


def test_local_mirror_copy_is_checksummed_as_it_is_copied(tmp_path: Path):
    """A local mirror's file is copied and hashed in one pass (copy_hashing); a same-size file with other bytes
    is still an md5 error, and nothing is kept under its store path."""
    folder = tmp_path / "mirror" / "example.org" / "x"
    folder.mkdir(parents=True)
    (folder / "blob.bin").write_bytes(PAYLOAD[:-1] + b"?")
    client = quick_client(tmp_path / "store", mirror=str(tmp_path / "mirror"))
    with pytest.raises(ChecksumError, match=r"md5 [0-9a-f]{32}, expected " + hashlib.md5(PAYLOAD).hexdigest()):
        client.fetch("https://example.org/x/blob.bin", expected_of(PAYLOAD))
    assert not list((tmp_path / "store").rglob("blob.bin*"))
    assert copy_hashing(folder / "blob.bin", tmp_path / "copy", Expected(md5="x", sha256="y")) == {
        "md5": hashlib.md5(PAYLOAD[:-1] + b"?").hexdigest(),
        "sha256": hashlib.sha256(PAYLOAD[:-1] + b"?").hexdigest(),
    }
    assert (tmp_path / "copy").read_bytes() == PAYLOAD[:-1] + b"?"


def test_gdc_download_from_a_local_mirror_on_two_threads_is_the_same(tmp_path, demo_dir):
    """workers=2 copies and checksums the STAR files on two threads: the same raw folder, byte for byte, and the
    same progress count."""
    from ferrostem.download import download_cohort, settings

    cohort = {"source": "gdc", "project": "TCGA-DEMO", "simulated": True}
    raws = {}
    for workers in (1, 2):
        download = settings({"mirror": str(demo_dir / "mirror"), "download": {"store": str(tmp_path / f"s{workers}")}})
        raws[workers] = download_cohort(cohort, download, tmp_path / f"raw{workers}", workers=workers)
    files = {w: sorted(p.relative_to(raw) for p in raw.rglob("*") if p.is_file()) for w, raw in raws.items()}
    assert files[1] == files[2] and len(files[1]) > 123
    assert [str(p) for p in files[1] if (raws[1] / p).read_bytes() != (raws[2] / p).read_bytes()] == []
