"""A stand-in for a vLLM server, for molecule/monitoring (no vLLM install): answers GET /v1/models (the
front door's health check) and GET /metrics with a real vLLM capture, both only with the bearer key in
the key file, so a scrape without the key is seen as a failure.

    python3 standin_vllm.py HOST PORT KEY_FILE METRICS_FILE MODEL
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST, PORT, KEY_FILE, METRICS_FILE, MODEL = sys.argv[1:6]
KEY = Path(KEY_FILE).read_text().strip()
METRICS = Path(METRICS_FILE).read_bytes()
MODELS = json.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model"}]}, separators=(",", ":")
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            self.answer(401, b'{"error":"missing or wrong key"}', "application/json")
        elif self.path == "/v1/models":
            self.answer(200, MODELS, "application/json")
        elif self.path == "/metrics":
            self.answer(200, METRICS, "text/plain; version=0.0.4")
        else:
            self.answer(404, b"{}", "application/json")

    def answer(self, code, body, content_type):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        return


ThreadingHTTPServer((HOST, int(PORT)), Handler).serve_forever()
