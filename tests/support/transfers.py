"""Transfer scenarios shared by the backends' suites (local disk in integration/, S3 in s3/)."""

from __future__ import annotations

import threading
from typing import Any

from .client import Ctl, send_all_and_close


def concurrent_stou(srv: Any, n: int = 20, timeout: float = 30.0) -> dict[str, bytes]:
    """``n`` clients send ``STOU`` at the same moment, each with its own payload.

    Returns {name from the 150 reply: payload}; asserts that every upload got 150 and 226. The
    caller checks the storage: ``n`` distinct names, each holding its own payload (an upload that
    overwrote another's would leave one name with the wrong bytes and one payload missing).
    """
    barrier = threading.Barrier(n, timeout=timeout)
    results: dict[int, tuple[str, bytes]] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        payload = f"upload {i} ".encode() * (100 + i)
        try:
            with Ctl(srv.host, srv.port, timeout=timeout) as c:
                c.login(srv.user, srv.password)
                assert c.code("TYPE I") == 200
                d = c.data_socket()
                barrier.wait()  # all STOUs leave together
                r = c.cmd("STOU")
                assert r.code == 150 and r.text.startswith("FILE: "), r
                send_all_and_close(d, payload)
                final = c.reply()
                assert final.code == 226, final
                results[i] = (r.text[len("FILE: ") :], payload)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 2)
    assert not errors, errors[:3]
    names = [name for name, _ in results.values()]
    assert len(results) == n and len(set(names)) == n, f"names given out twice: {sorted(names)}"
    return {name: payload for name, payload in results.values()}
