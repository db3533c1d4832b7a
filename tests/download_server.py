"""A loopback HTTP server for the download tests: a static mirror (GEO/Xena/resources layout, HTML
directory indexes, Range requests) and an imitation of the GDC API (POST /files and /cases with paging,
GET /status, GET /data/<id>, POST /data answering a tar.gz), with scripted faults per path."""

from __future__ import annotations

import gzip
import io
import json
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
        self.gdc_status: dict[str, Any] = {"status": "OK", "data_release": "Data Release 99.0 (loopback)"}
        self.gdc_data: dict[str, bytes] = {}
        self.tar_extra: list[tuple[tarfile.TarInfo, bytes]] = []  # members added to every /data tar
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

    def _send(self, handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, method: str, path: str, body: bytes, handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith(GDC_PREFIX + "/"):
            return self._gdc(method, path[len(GDC_PREFIX):], body)
        file = self.root / path.lstrip("/")
        if file.is_dir() or path.endswith("/"):
            if not file.is_dir():
                raise FileNotFoundError(path)
            links = "".join(f'<a href="{p.name}{"/" if p.is_dir() else ""}">{p.name}</a>\n' for p in sorted(file.iterdir()))
            return 200, f"<html><body><a href=\"../\">Parent</a>\n{links}</body></html>".encode(), {"Content-Type": "text/html"}
        if not file.is_file():
            raise FileNotFoundError(path)
        return self._ranged(file.read_bytes(), handler)

    def _ranged(self, data: bytes, handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0])
            if start >= len(data):
                return 416, b"", {"Content-Range": f"bytes */{len(data)}"}
            return 206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "Accept-Ranges": "bytes"}
        return 200, data, {"Accept-Ranges": "bytes"}

    def _gdc(self, method: str, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        js = {"Content-Type": "application/json"}
        if path in {"/files", "/cases"} and method == "POST":
            query = json.loads(body)
            hits = self.gdc_files if path == "/files" else self.gdc_cases
            start, size = int(query.get("from", 0)), int(query.get("size", 10))
            page = hits[start:start + size]
            answer = {"data": {"hits": page, "pagination": {"count": len(page), "total": len(hits), "from": start,
                                                             "size": size}}, "warnings": {}}
            return 200, json.dumps(answer).encode(), js
        if path == "/status":
            return 200, json.dumps(self.gdc_status).encode(), js
        if path.startswith("/data/") and method == "GET":
            file_id = path[len("/data/"):]
            if file_id not in self.gdc_data:
                raise FileNotFoundError(path)
            data = self.gdc_data[file_id]
            return 200, data, {"Content-Type": "text/tab-separated-values", "Accept-Ranges": "bytes"}
        if path == "/data" and method == "POST":
            ids = json.loads(body)["ids"]
            names = {h["file_id"]: h["file_name"] for h in self.gdc_files}
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
                for file_id in ids:
                    info = tarfile.TarInfo(f"{file_id}/{names[file_id]}")
                    info.size = len(self.gdc_data[file_id])
                    tar.addfile(info, io.BytesIO(self.gdc_data[file_id]))
                for info, data in self.tar_extra:
                    tar.addfile(info, io.BytesIO(data) if data else None)
            return 200, buffer.getvalue(), {"Content-Type": "application/x-tar"}
        raise FileNotFoundError(path)

    # -- set-up helpers --------------------------------------------------------------------
    def load_gdc_mirror(self, mirror: Path, project: str) -> None:
        """Serve a demo GDC mirror (files/<project>.json, cases/..., data/<id>) through the imitated API."""
        api = mirror / "api.gdc.cancer.gov"
        self.gdc_files = json.loads((api / "files" / f"{project}.json").read_text())["data"]["hits"]
        self.gdc_cases = json.loads((api / "cases" / f"{project}.json").read_text())["data"]["hits"]
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
