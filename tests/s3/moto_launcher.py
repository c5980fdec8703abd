"""moto's S3 server for these tests, run as ``python -m moto.server`` runs it, plus a seeding route.

moto spends about 8 ms of CPU on every HTTP request, so creating the 5,000 keys of the paging test
with PutObject would take 40 s. ``POST /_ftpd_tests/seed`` with ``{"bucket": B, "keys": [[key,
size], ...]}`` puts them straight into moto's S3 backend instead (0.2 s); everything the tests check
still goes through the S3 API. ``"objects": [{"key", "body" (base64), "mtime" (epoch seconds),
"content_type"}, ...]`` in the same request seeds given contents dated ``mtime``: objects uploaded
long ago, which no S3 API call can create (the conformance suite dates its initial tree so).

Usage: ``python tests/s3/moto_launcher.py HOST PORT`` (port 0: any free port; the URL is logged as
werkzeug's "Running on http://HOST:PORT" line).
"""

from __future__ import annotations

import base64
import datetime
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import s3_backends
from werkzeug.serving import run_simple

SEED_PATH = "/_ftpd_tests/seed"

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_seeding(app: Wsgi) -> Wsgi:
    # S3 decides a conditional write (If-None-Match: *) atomically; moto checks for the key, then
    # writes, in two steps that concurrent requests interleave. One lock makes them atomic here,
    # so that a test of concurrent STOUs tests ftpd, not moto.
    conditional = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != SEED_PATH or environ.get("REQUEST_METHOD") != "POST":
            if environ.get("HTTP_IF_NONE_MATCH") and environ.get("REQUEST_METHOD") in (
                "PUT",
                "POST",
            ):
                with conditional:
                    return list(app(environ, start_response))
            return app(environ, start_response)
        spec = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, size in spec.get("keys", ()):
            backend.put_object(spec["bucket"], key, b"x" * size)
        for obj in spec.get("objects", ()):
            fake = backend.put_object(spec["bucket"], obj["key"], base64.b64decode(obj["body"]))
            if obj.get("content_type"):
                fake.set_metadata({"Content-Type": obj["content_type"]})
            if obj.get("mtime") is not None:
                # moto keeps naive UTC datetimes (moto.core.utils.utcnow).
                when = datetime.datetime.fromtimestamp(obj["mtime"], datetime.UTC)
                fake.last_modified = when.replace(tzinfo=None)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"seeded"]

    return wsgi


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, with_seeding(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
