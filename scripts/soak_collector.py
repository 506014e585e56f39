#!/usr/bin/env python3
"""The audit collector of `make soak` / `make faults` (docs/reliability.md); also serves a JWKS.

    soak_collector.py collect --port P --dir DIR     # the audit filter's HTTP sink posts here
    soak_collector.py serve --port P --file FILE     # GET anything: FILE's bytes (a JWKS)

`collect` takes the NDJSON batches of the audit HTTP sink (docs/audit.md, "Shipping design"):
a header line `{"batch": {"stream", "first_seq", "records", "dropped", ...}}` and then the
sealed records. Every batch body is appended to DIR/records.ndjson (for
`portcullis-audit-verify`) and the counts are kept in DIR/counts.json, so that a collector
stopped and started again (the outage fault) goes on counting. A batch the filter sends again
after a timeout whose first POST did arrive has the same (stream, first_seq): it is answered 200
and counted once. `GET /counts` answers the counts. Loopback only; stdlib only.
"""

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Counts:
    def __init__(self, directory):
        self.dir = directory
        self.path = os.path.join(directory, "counts.json")
        self.lock = threading.Lock()
        self.state = {"batches": 0, "records": 0, "dropped_reported": 0, "duplicates": 0,
                      "bad_batches": 0, "seen": []}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.state.update(json.load(f))
        self.seen = set(tuple(s) for s in self.state["seen"])

    def add(self, body):
        lines = body.decode("utf-8", "replace").splitlines()
        try:
            header = json.loads(lines[0])["batch"]
            key = (str(header["stream"]), int(header["first_seq"]))
            declared = int(header["records"])
            dropped = int(header["dropped"])
        except (IndexError, KeyError, TypeError, ValueError):
            with self.lock:
                self.state["bad_batches"] += 1
                self.save()
            return False
        records = [line for line in lines[1:] if line.strip()]
        with self.lock:
            if key in self.seen:
                self.state["duplicates"] += 1
                self.save()
                return True
            self.seen.add(key)
            self.state["seen"].append(list(key))
            if declared != len(records):
                self.state["bad_batches"] += 1
            self.state["batches"] += 1
            self.state["records"] += len(records)
            self.state["dropped_reported"] += dropped
            with open(os.path.join(self.dir, "records.ndjson"), "ab") as f:
                f.write(body if body.endswith(b"\n") else body + b"\n")
            self.save()
        return True

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.path)

    def snapshot(self):
        with self.lock:
            return {k: v for k, v in self.state.items() if k != "seen"}


def collector(counts):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            ok = counts.add(body)
            self.answer(200 if ok else 400, b"{}")

        def do_GET(self):
            self.answer(200, json.dumps(counts.snapshot()).encode())

        def answer(self, status, body):
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    return Handler


def server(payload):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_):
            pass

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["collect", "serve"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir")
    p.add_argument("--file")
    a = p.parse_args()
    if a.mode == "collect":
        os.makedirs(a.dir, exist_ok=True)
        handler = collector(Counts(a.dir))
    else:
        with open(a.file, "rb") as f:
            handler = server(f.read())
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer(("127.0.0.1", a.port), handler)
    print(f"{a.mode} on 127.0.0.1:{a.port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
