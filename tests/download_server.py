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

GDC_PREFIX = "/gdcapi"


class LoopbackServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)  # static files: /<path> -> root/<path>
        self.faults: dict[str, list[str]] = defaultdict(list)  # path -> actions consumed one per request
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.gdc_files: list[dict[str, Any]] = []
        self.gdc_cases: list[dict[str, Any]] = []
        self.gdc_status: dict[str, Any] = {"commit": "0" * 40, "data_release": "Data Release 99.0 (loopback)",
                                           "status": "OK", "tag": "loopback", "version": 1}
        self.gdc_data: dict[str, bytes] = {}
        self.tar_extra: list[tuple[tarfile.TarInfo, bytes]] = []  # members added to every /data tar
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
            hits = self._gdc_sorted(self.gdc_files if path == "/files" else self.gdc_cases, query.get("sort"))
            start, size = int(query.get("from", 0)), int(query.get("size", 10))
            if self.gdc_page_overlap and start == size:
                start -= 1
            page = hits[start:start + size] if self.gdc_result_window is None or start < self.gdc_result_window else []
            pagination = {"count": len(page), "total": len(hits), "size": size, "from": start,
                          "sort": str(query.get("sort") or ""), "page": start // size + 1 if size else 1,
                          "pages": -(-len(hits) // size) if size else 1}
            answer = {"data": {"hits": page, "pagination": pagination}, "warnings": {}}
            self.gdc_queries.append(body)
            self.gdc_answers.append(answer)
            return 200, json.dumps(answer).encode(), js
        if path == "/status":
            return 200, json.dumps(self.gdc_status).encode(), js
        if path.startswith("/data/") and method == "GET":
            file_id = path[len("/data/"):]
            if file_id not in self.gdc_data:
                raise FileNotFoundError(path)
            data = self.gdc_data[file_id]
            wanted = self.requests[-1][2].get("Range", "")  # this request's headers (the client asks one at a time)
            if self.gdc_honour_range and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[6:-1])
                return 206, data[start:], {"Content-Type": "text/tab-separated-values",
                                           "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
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
                    f"{i}\t{names[i]}\t{md5s[i]}\t{len(self.gdc_data[i])}\treleased\n" for i in ids)
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
