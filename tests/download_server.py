"""A loopback HTTP server for the download tests: a static mirror (GEO/Xena/resources layout, HTML
directory indexes, Range requests) and an imitation of the GDC API (POST /files and /cases with paging,
GET /status, GET /data/<id>, POST /data answering a tar.gz), with scripted faults per path.

GEO and NCBI as they answer beyond static files: `.../geo/query/acc.cgi?targ=self&acc=GPL...&form=text&view=full`
answers the platform-only SOFT record (`geo_platform_records`), and `.../geo/download/?acc=GSE...` answers the
series' download page, whose site-relative links (`/geo/download/?type=rnaseq_counts&acc=...&file=...`, the shape
GEOquery rnaseq.R reads) name the NCBI counts and annotation files present in that folder."""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
import tarfile
import threading
import time
import urllib.parse
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GDC_PREFIX = "/gdcapi"


class LoopbackServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # static files: /<path> -> root/<path>
        self.faults: dict[str, list[str]] = defaultdict(list)  # path -> actions consumed one per request
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.gdc_files: list[dict[str, Any]] = []
        self.gdc_cases: list[dict[str, Any]] = []
        self.gdc_status: dict[str, Any] = {
            "commit": "0" * 40,
            "data_release": "Data Release 99.0 (loopback)",
            "status": "OK",
            "tag": "loopback",
            "version": 1,
        }
        self.gdc_data: dict[str, bytes] = {}
        self.tar_extra: list[tuple[tarfile.TarInfo, bytes]] = []  # members added to every /data tar
        self.geo_platform_records: dict[str, str] = {}  # GPL -> SOFT text acc.cgi answers
        self.geo_queries: list[dict[str, str]] = []  # acc.cgi and download-page queries, as asked
        self.gdc_annotations: dict[str, str] = {}  # file id -> text of its `<id>/annotations.txt` tar member
        self.gdc_page_overlap = False  # the second page starts one hit early, as an unstable order would
        self.gdc_result_window: int | None = None  # hits beyond this offset are never served (empty pages)
        self.gdc_honour_range = False  # GET /data/<id> answers `Range: bytes=N-` with 206 (else 200, the whole file)
        self.gdc_queries: list[bytes] = []  # bodies of POST /files and /cases, in order
        self.gdc_answers: list[dict[str, Any]] = []  # their answers
        self.stall = threading.Event()
        self.stalled = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def gdc_api(self) -> str:
        return self.url + GDC_PREFIX

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stall.clear()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- handling --------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path, _, query = handler.path.partition("?")
        wanted_file = urllib.parse.parse_qs(query).get("file")
        if wanted_file:  # NCBI's /geo/download/?...&file=NAME answers that file
            path = path.rstrip("/") + "/" + wanted_file[0]
        body = b""
        if method == "POST":
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.requests.append((method, path, dict(handler.headers)))
        action = self.faults[path].pop(0) if self.faults.get(path) else None
        if action in {"500", "503", "429", "404"}:
            return self._send(handler, int(action), b"fault")
        if action == "timeout":
            time.sleep(1.5)
            return self._close(handler)
        if action == "stall":
            self.stalled.set()
            while self.stall.is_set():
                time.sleep(0.05)
        try:
            status, payload, headers = self._answer(method, path, body, handler)
        except FileNotFoundError:
            return self._send(handler, 404, b"not found")
        if action in {"reset", "truncate"} and status in {200, 206}:
            handler.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(payload))}.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            if action == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return self._close(handler)
        if action == "corrupt":
            payload = payload[:-40] + bytes(40)
        self._send(handler, status, payload, headers)

    def _close(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(
        self, method: str, path: str, body: bytes, handler: BaseHTTPRequestHandler
    ) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith(GDC_PREFIX + "/"):
            return self._gdc(method, path[len(GDC_PREFIX) :], body)
        geo_answer = self._geo(path, handler) if method == "GET" else None
        if geo_answer is not None:
            return geo_answer
        file = self.root / path.lstrip("/")
        if file.is_dir() or path.endswith("/"):
            if not file.is_dir():
                raise FileNotFoundError(path)
            links = "".join(
                f'<a href="{p.name}{"/" if p.is_dir() else ""}">{p.name}</a>\n' for p in sorted(file.iterdir())
            )
            return (
                200,
                f'<html><body><a href="../">Parent</a>\n{links}</body></html>'.encode(),
                {"Content-Type": "text/html"},
            )
        if not file.is_file():
            raise FileNotFoundError(path)
        return self._ranged(file.read_bytes(), handler)

    def _ranged(self, data: bytes, handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0])
            if start >= len(data):
                return 416, b"", {"Content-Range": f"bytes */{len(data)}"}
            return (
                206,
                data[start:],
                {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "Accept-Ranges": "bytes"},
            )
        return 200, data, {"Accept-Ranges": "bytes"}

    def _gdc(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        js = {"Content-Type": "application/json"}
        if path in {"/files", "/cases"} and method == "POST":
            query = json.loads(body)
            hits = self._gdc_sorted(self.gdc_files if path == "/files" else self.gdc_cases, query.get("sort"))
            start, size = int(query.get("from", 0)), int(query.get("size", 10))
            if self.gdc_page_overlap and start == size:
                start -= 1
            page = (
                hits[start : start + size] if self.gdc_result_window is None or start < self.gdc_result_window else []
            )
            pagination = {
                "count": len(page),
                "total": len(hits),
                "size": size,
                "from": start,
                "sort": str(query.get("sort") or ""),
                "page": start // size + 1 if size else 1,
                "pages": -(-len(hits) // size) if size else 1,
            }
            answer = {"data": {"hits": page, "pagination": pagination}, "warnings": {}}
            self.gdc_queries.append(body)
            self.gdc_answers.append(answer)
            return 200, json.dumps(answer).encode(), js
        if path == "/status":
            return 200, json.dumps(self.gdc_status).encode(), js
        if path.startswith("/data/") and method == "GET":
            file_id = path[len("/data/") :]
            if file_id not in self.gdc_data:
                raise FileNotFoundError(path)
            data = self.gdc_data[file_id]
            wanted = self.requests[-1][2].get("Range", "")  # this request's headers (the client asks one at a time)
            if self.gdc_honour_range and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[6:-1])
                return (
                    206,
                    data[start:],
                    {
                        "Content-Type": "text/tab-separated-values",
                        "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                    },
                )
            return 200, data, {"Content-Type": "text/tab-separated-values", "Accept-Ranges": "bytes"}
        if path == "/data" and method == "POST":
            ids = json.loads(body)["ids"]
            names = {h["file_id"]: h["file_name"] for h in self.gdc_files}
            md5s = {h["file_id"]: h.get("md5sum", "") for h in self.gdc_files}
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
                # real /data tars carry a root MANIFEST.txt (gdc-client skips it by name); its exact content is
                # unpublished, so the Data Transfer Tool manifest columns stand in
                manifest = "id\tfilename\tmd5\tsize\tstate\n" + "".join(
                    f"{i}\t{names[i]}\t{md5s[i]}\t{len(self.gdc_data[i])}\treleased\n" for i in ids
                )
                members = [("MANIFEST.txt", manifest.encode())]
                for file_id in ids:
                    members.append((f"{file_id}/{names[file_id]}", self.gdc_data[file_id]))
                    if file_id in self.gdc_annotations:
                        members.append((f"{file_id}/annotations.txt", self.gdc_annotations[file_id].encode()))
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                for info, data in self.tar_extra:
                    tar.addfile(info, io.BytesIO(data) if data else None)
            return 200, buffer.getvalue(), {"Content-Type": "application/x-tar"}
        raise FileNotFoundError(path)

    def _geo(self, path: str, handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]] | None:
        query = {k: v[0] for k, v in urllib.parse.parse_qs(handler.path.partition("?")[2]).items()}
        if path.endswith("/geo/query/acc.cgi"):
            self.geo_queries.append(query)
            record = self.geo_platform_records.get(query.get("acc", ""))
            if record is None:  # GEO answers an unknown accession with a page, not a 404
                return (
                    200,
                    b"<html><body>Could not find a public or private accession</body></html>",
                    {"Content-Type": "text/html"},
                )
            return 200, record.encode(), {"Content-Type": "text/plain"}
        if path.rstrip("/").endswith("/geo/download") and "acc" in query and "file" not in query:
            self.geo_queries.append(query)
            folder = self.root / path.strip("/")
            page = ncbi_download_page(query["acc"], sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [])
            return 200, page.encode(), {"Content-Type": "text/html"}
        return None

    @staticmethod
    def _gdc_sorted(hits: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
        """Hits in the order of a GDC `sort` ("field:asc", "field:desc", comma-separated); unsorted as given."""
        ordered = list(hits)
        for key in reversed([k for k in str(sort or "").split(",") if k]):
            field, _, direction = key.partition(":")
            ordered.sort(key=lambda hit: str(hit.get(field, "")), reverse=direction == "desc")
        return ordered

    # -- set-up helpers --------------------------------------------------------------------
    def load_gdc_mirror(self, mirror: Path, project: str) -> None:
        """Serve a demo GDC mirror (files/<project>.json, cases/..., data/<id>) through the imitated API.

        Hits are held in the order the client's `sort` gives (file_id, case_id), so `gdc_files[k]` is the k-th
        file the client asks for."""
        api = mirror / "api.gdc.cancer.gov"
        files = json.loads((api / "files" / f"{project}.json").read_text())["data"]["hits"]
        cases = json.loads((api / "cases" / f"{project}.json").read_text())["data"]["hits"]
        self.gdc_files = self._gdc_sorted(files, "file_id:asc")
        self.gdc_cases = self._gdc_sorted(cases, "case_id:asc")
        self.gdc_data = {h["file_id"]: (api / "data" / h["file_id"]).read_bytes() for h in self.gdc_files}


def gzip_bytes(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


# -- UCSC Xena GDC hub files, written as xena-GDC-ETL writes them ---------------------------------------------
def xena_hub_matrix(per_file: pd.DataFrame, sample_of_file: dict[str, str]) -> pd.DataFrame:
    """What the hub ETL (`xena_dataset.merge_sample_cols`) makes of per-file STAR columns (genes x files):
    the files of one sample averaged, then log2(x+1). Columns are the samples, in first-seen order."""
    samples = [sample_of_file[f] for f in per_file.columns]
    merged = per_file.T.groupby(samples, sort=False).mean().T
    return np.log2(merged.astype(float) + 1.0)


def write_xena_matrix(path: Path, log2_values: pd.DataFrame) -> None:
    """A hub genomic matrix: `Ensembl_ID` then one column per sample, full double precision, gzipped."""
    frame = log2_values.copy()
    frame.index.name = "Ensembl_ID"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip_bytes(frame.to_csv(sep="\t")))


def write_xena_table(path: Path, table: pd.DataFrame) -> None:
    """A hub clinicalMatrix (clinical.tsv, survival.tsv), gzipped. A cell holding a Python list is written
    as its repr, as the ETL's `format_multiple_data` (`groupby('id').agg(list)` then `to_csv`) leaves a case
    with several diagnosis records: "['Stage IIIA', '']" (missing elements are '' after its `fillna('')`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip_bytes(table.to_csv(sep="\t", index=False)))


# -- GEO / NCBI formats --------------------------------------------------------------------------


def ncbi_download_page(accession: str, files: list[str]) -> str:
    """A series' download page as GEOquery rnaseq.R reads it: site-relative `/geo/download/?...&file=` links
    for the series' raw counts (and the normalised tables beside them) and for the annotation of the counts'
    build; the raw-data and supplementary links every series has. `&` is written `&amp;`, as HTML requires."""
    stub = re.sub(r"\d{1,3}$", "nnn", accession)
    links = [
        f"/geo/download/?acc={accession}&format=file",
        f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/{stub}/{accession}/suppl/",
    ]
    for name in files:
        if name.startswith(f"{accession}_") and "_counts_" in name:
            links.append(f"/geo/download/?type=rnaseq_counts&acc={accession}&format=file&file={name}")
            build = name.rsplit("_counts_", 1)[1].removesuffix("_NCBI.tsv.gz").split("_")[-1]
            links += [
                f"/geo/download/?format=file&type=rnaseq_counts&file={a}"
                for a in files
                if a.endswith(f".{build}.annot.tsv.gz")
            ]
    anchors = "\n".join(
        f'<a href="{link.replace("&", "&amp;")}">{link.rsplit("=", 1)[-1]}</a>' for link in dict.fromkeys(links)
    )
    return f"<html><body><h1>{accession}</h1>\n{anchors}\n</body></html>\n"


def platform_record(platform: str, header: list[str], rows: list[list[str]], declared_rows: int | None = None) -> str:
    """A platform-only SOFT record as acc.cgi `targ=self&form=text&view=full` answers it (GEOparse's layout)."""
    lines = [
        f"^PLATFORM = {platform}",
        f"!Platform_title = loopback platform {platform}",
        f"!Platform_geo_accession = {platform}",
        "!Platform_organism = Homo sapiens",
        f"!Platform_data_row_count = {len(rows) if declared_rows is None else declared_rows}",
        *[f"#{c} = " for c in header],
        "!platform_table_begin",
        "\t".join(header),
        *["\t".join(r) for r in rows],
        "!platform_table_end",
    ]
    return "\n".join(lines) + "\n"


def series_matrix(
    accession: str,
    platform: str,
    samples: list[str],
    characteristics: list[list[str]],
    table: dict[str, list[float]],
    extra: tuple[str, ...] = (),
) -> str:
    """A series matrix: every cell quoted, one `!Sample_characteristics_ch1` line per entry of
    `characteristics` (a "key: value" cell per sample; keys may differ in case or repeat, as real series do)."""
    q = lambda values: "\t".join(f'"{v}"' for v in values)  # noqa: E731
    lines = [
        f'!Series_title\t"loopback {accession}"',
        f'!Series_geo_accession\t"{accession}"',
        f'!Series_platform_id\t"{platform}"',
        f"!Sample_title\t{q(samples)}",
        f"!Sample_geo_accession\t{q(samples)}",
        *extra,
        *[f"!Sample_characteristics_ch1\t{q(cells)}" for cells in characteristics],
        f"!Sample_platform_id\t{q([platform] * len(samples))}",
        "!series_matrix_table_begin",
        "\t".join(['"ID_REF"'] + [f'"{s}"' for s in samples]),
        *["\t".join([f'"{probe}"'] + [str(v) for v in values]) for probe, values in table.items()],
        "!series_matrix_table_end",
    ]
    return "\n".join(lines) + "\n"
