"""A loopback stand-in for the ModelScope (and Hugging Face) hub API, serving one real model directory.

A mock by necessity: no model hub is reachable from CI, so this plays the hub the way moto plays AWS.
It implements only what a file listing and a download need, as the real services answer them:

  ModelScope  GET /api/v1/models/{org}/{name}/repo/files?Revision=R&Recursive=True   (what the modelscope
              SDK's HubApi.list_repo_files calls; entries carry Path, Type, Size, Sha256)
              GET /api/v1/models/{org}/{name}/repo?Revision=R&FilePath=P              (file bytes, Range)
  Hugging Face GET /api/models/{org}/{name}/tree/{R}?recursive=true                  (lfs.oid = sha256)
              GET /{org}/{name}/resolve/{R}/{path}                                   (file bytes, Range)

It counts the bytes it sends and the requests it answers, can cut a file's transfer after N bytes (an
interrupted download) and can corrupt one file's bytes in transit a given number of times.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".pth")


def listing(model_dir: Path) -> list[dict]:
    """Every file of the model with its real size, sha256 and git blob id."""
    entries = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entries.append(
            {
                "path": path.relative_to(model_dir).as_posix(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "git_oid": hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest(),
            }
        )
    return entries


class HubStandin:
    def __init__(self, model_dir: Path, repo_id: str = "Qwen/Qwen3-Tiny", revision: str = "v1.0"):
        self.model_dir, self.repo_id, self.revision = model_dir, repo_id, revision
        self.files = {entry["path"]: entry for entry in listing(model_dir)}
        self.bytes_sent = 0
        self.sent: dict[str, int] = {}  # body bytes sent per file
        self.requests: list[str] = []
        self.cut_after: dict[str, int] = {}  # path -> close the connection after this many bytes, once
        self.corrupt: dict[str, int] = {}  # path -> how many more times to send it with a flipped byte
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counters(self) -> None:
        self.bytes_sent, self.sent, self.requests = 0, {}, []

    # --- routes -------------------------------------------------------------------------------------

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with self._lock:
            self.requests.append(handler.path)
        ms = re.fullmatch(r"/api/v1/models/([^/]+/[^/]+)/repo(/files)?", parts.path)
        hf_tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", parts.path)
        hf_file = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", parts.path)
        if ms:
            self.modelscope(handler, ms.group(1), query.get("Revision", "master"), ms.group(2), query)
        elif hf_tree:
            self.hf_tree(handler, hf_tree.group(1), urllib.parse.unquote(hf_tree.group(2)))
        elif hf_file:
            repo, revision, path = hf_file.group(1), hf_file.group(2), urllib.parse.unquote(hf_file.group(3))
            if self.known(handler, repo, revision, hub="hf"):
                self.send_file(handler, path)
        else:
            self.send_json(handler, 404, {"Code": 404, "Success": False, "Message": f"no route {parts.path}"})

    def known(self, handler, repo: str, revision: str, hub: str) -> bool:
        if repo != self.repo_id:
            message = f"model {repo} not found"
        elif revision != self.revision:
            message = f"revision {revision} of {repo} not found"
        else:
            return True
        body = (
            {"error": message} if hub == "hf" else {"Code": 10010205001, "Success": False, "Message": message}
        )
        self.send_json(handler, 404, body)
        return False

    def modelscope(self, handler, repo: str, revision: str, is_listing: str | None, query: dict) -> None:
        if not self.known(handler, repo, revision, hub="modelscope"):
            return
        if not is_listing:
            self.send_file(handler, query.get("FilePath", ""))
            return
        files = [
            {
                "Name": entry["path"].rsplit("/", 1)[-1],
                "Path": entry["path"],
                "Type": "blob",
                "Size": entry["size"],
                "Sha256": entry["sha256"],
                "IsLFS": entry["path"].endswith(LFS_SUFFIXES),
                "Revision": revision,
            }
            for entry in self.files.values()
        ]
        self.send_json(
            handler, 200, {"Code": 200, "Success": True, "Message": "success", "Data": {"Files": files}}
        )

    def hf_tree(self, handler, repo: str, revision: str) -> None:
        if not self.known(handler, repo, revision, hub="hf"):
            return
        tree = []
        for entry in self.files.values():
            item = {"type": "file", "path": entry["path"], "size": entry["size"], "oid": entry["git_oid"]}
            if entry["path"].endswith(LFS_SUFFIXES):
                item["lfs"] = {"oid": entry["sha256"], "size": entry["size"]}
            tree.append(item)
        self.send_json(handler, 200, tree)

    # --- responses ----------------------------------------------------------------------------------

    def send_json(self, handler, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def send_file(self, handler, path: str) -> None:
        if path not in self.files:
            self.send_json(handler, 404, {"Code": 404, "Success": False, "Message": f"file {path} not found"})
            return
        data = (self.model_dir / path).read_bytes()
        with self._lock:
            if self.corrupt.get(path, 0) > 0:
                self.corrupt[path] -= 1
                data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            handler.send_response(200)
        body = data[start:]
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.end_headers()
        with self._lock:
            cut = self.cut_after.pop(path, None)
        if cut is not None and cut < len(body):
            body = body[:cut]  # an interrupted transfer: fewer bytes than announced, then the socket closes
            handler.close_connection = True
        handler.wfile.write(body)
        handler.wfile.flush()
        with self._lock:
            self.bytes_sent += len(body)
            self.sent[path] = self.sent.get(path, 0) + len(body)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                standin.route(self)

            def log_message(self, *args):  # keep pytest output clean
                pass

        return Handler
