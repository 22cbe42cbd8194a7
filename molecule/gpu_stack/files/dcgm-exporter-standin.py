#!/usr/bin/python3
"""STAND-IN for NVIDIA's dcgm-exporter, for molecule/gpu_stack only: the container has no GPU and no DCGM.

It takes the real exporter's flags (-a/--address, default ":9400" on every address; -f/--collectors,
the fields CSV, which must exist; -r/--remote-hostengine-info, accepted and unused) and serves a fixed
/metrics: one zero sample per DCGM_FI_* field listed in the CSV. Nothing here reads a GPU.
"""

import argparse
import http.server
from pathlib import Path


def fields(collectors: Path) -> list[str]:
    """The field names of a dcgm-exporter collectors CSV (first column; # starts a comment)."""
    lines = (line.split("#", 1)[0].strip() for line in collectors.read_text().splitlines())
    return [line.split(",")[0].strip() for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description="stand-in dcgm-exporter (no GPU)")
    parser.add_argument("-a", "--address", default=":9400")
    parser.add_argument("-f", "--collectors", default="/etc/dcgm-exporter/default-counters.csv")
    parser.add_argument("-r", "--remote-hostengine-info", default="")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    body = "".join(
        f'# TYPE {name} gauge\n{name}{{gpu="0",UUID="GPU-standin",Hostname="standin"}} 0\n'
        for name in fields(Path(args.collectors))
    ).encode()

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

    # host "" binds every address, as the real exporter's default ":9400" does.
    http.server.HTTPServer((host.strip("[]"), int(port)), Metrics).serve_forever()


if __name__ == "__main__":
    main()
