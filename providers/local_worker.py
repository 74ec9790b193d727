"""A small inference worker for the `local` provider and the demo.

It behaves like a cold-starting model server: it loads for `--load-time` seconds (the
weights), during which connections are refused, then answers `GET /healthz` and
`POST /infer` (which holds a slot for `--service-time` seconds). SIGTERM lets an in-flight
request finish and exits.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="prewarm-local-worker")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--load-time", type=float, default=5.0)
    ap.add_argument("--service-time", type=float, default=0.1)
    ap.add_argument("--name", default="worker")
    args = ap.parse_args(argv)

    started = time.time()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Loading: nothing listens yet, exactly like a server still reading its weights.
    if stop.wait(args.load_time):
        return 0
    ready_after = time.time() - started

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path == "/healthz":
                self._send(200, {"name": args.name, "ready_after_s": round(ready_after, 3)})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):  # noqa: N802
            if self.path != "/infer":
                return self._send(404, {"error": "not found"})
            time.sleep(args.service_time)
            self._send(200, {"name": args.name, "output": "ok"})

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(json.dumps({"event": "ready", "port": args.port, "after_s": ready_after}), flush=True)
    stop.wait()
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
