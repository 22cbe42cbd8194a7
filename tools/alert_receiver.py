"""The lab's alert receiver: records every notification Alertmanager's webhook sends, and shows them.

    python3 tools/alert_receiver.py --listen 127.0.0.1:9095 --log /var/lib/alert-receiver/alerts.jsonl

POST /alerts appends the notification (Alertmanager's webhook JSON) to the log, one line each; GET
/alerts answers every notification recorded so far as one JSON list. Standard library only: it runs on
the lab's monitoring host with the system's python3.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PATH = "/alerts"
MAX_BODY = 1 << 20


def make_handler(log: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != PATH or not 0 < length <= MAX_BODY:
                self.send_error(404 if self.path != PATH else 400)
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_error(400, "not JSON")
                return
            with lock, log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(notification, sort_keys=True) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            if self.path != PATH:
                self.send_error(404)
                return
            with lock:
                lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            body = ("[" + ",".join(lines) + "]").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # the log file is the record; the journal stays quiet

    return Handler


def serve(listen: str, log: Path) -> ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")
    return ThreadingHTTPServer((host.strip("[]"), int(port)), make_handler(log))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:9095", help="address:port to listen on")
    parser.add_argument("--log", type=Path, required=True, help="file the notifications are appended to")
    args = parser.parse_args(argv)
    serve(args.listen, args.log).serve_forever()


if __name__ == "__main__":
    main()
