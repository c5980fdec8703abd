"""The optional Prometheus endpoint (``metrics_port``; needs the ``metrics`` extra).

Nothing here runs per event: the ``Observer`` counts in plain dictionaries on the event loop, and
the collector below reads them when Prometheus scrapes (in prometheus-client's HTTP thread). A
dictionary copy is one C call under the GIL, so a scrape sees a consistent-enough snapshot and the
loop never waits for a lock.

Exposed (all prefixed ``ftpd_``):

================================  =======  =================================================
name                              type     meaning
================================  =======  =================================================
sessions_active                   gauge    control connections open now
sessions_total                    counter  control connections accepted
logins_total{result}              counter  logins, result ok or failed
transfers_total{direction,result} counter  data transfers (listings count as downloads);
                                           result ok, aborted, lost, timeout, ...
transfer_bytes_total{direction}   counter  bytes on data connections, download or upload
error_replies_total{code}         counter  replies with a 4xx/5xx code
passive_ports_in_use              gauge    passive ports this process listens on now
passive_ports_capacity            gauge    size of the passive range (all workers share it)
event_loop_lag_seconds            gauge    how late the last 1 s timer fired
info{version,worker}              gauge    always 1
================================  =======  =================================================

plus prometheus-client's ``process_*`` (memory, CPU, open fds) and ``python_info``.

With ``workers`` > 1 every worker has its own counters and its own endpoint, on ``metrics_port``
+ the worker's index (0, 1, ...): scrape them all, and sum in PromQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ..config import ConfigError
from ..version import __version__

__all__ = ["MetricsEndpoint", "require_prometheus"]

INSTALL_HINT = "pip install 'ftpd[metrics]'"


def require_prometheus() -> None:
    """Raise ConfigError unless prometheus-client can be imported (checked at start-up)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"metrics_port is set but prometheus-client is not installed ({INSTALL_HINT}); "
            "set metrics_port to 0 to run without metrics"
        ) from None


class Observer(Protocol):
    """What the endpoint reads of ``observe.Observer`` (a protocol: observe.py imports this
    module, so importing it back would be a cycle)."""

    server: Any  # the host: its worker index

    def snapshot(self) -> dict[str, Any]: ...


class _Collector:
    """Builds the metric families from an Observer at scrape time."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        obs = self.observer
        snap = obs.snapshot()
        server = obs.server

        yield _gauge(
            GaugeMetricFamily,
            "ftpd_info",
            "ftpd version and worker index",
            1,
            {"version": __version__, "worker": str(getattr(server, "worker", 0))},
        )
        yield _gauge(
            GaugeMetricFamily,
            "ftpd_sessions_active",
            "Control connections open now",
            snap["sessions_active"],
        )
        c = CounterMetricFamily("ftpd_sessions", "Control connections accepted")
        c.add_metric([], snap["sessions_total"])
        yield c

        c = CounterMetricFamily("ftpd_logins", "Logins by result", labels=["result"])
        for result in ("ok", "failed"):
            c.add_metric([result], snap["logins"].get(result, 0))
        yield c

        c = CounterMetricFamily(
            "ftpd_transfers",
            "Data transfers by direction and result (listings count as downloads)",
            labels=["direction", "result"],
        )
        transfers = snap["transfers"]
        for direction in ("download", "upload"):
            if not any(d == direction for d, _ in transfers):
                c.add_metric([direction, "ok"], 0)  # both directions always present
        for (direction, result), n in sorted(transfers.items()):
            c.add_metric([direction, result], n)
        yield c

        c = CounterMetricFamily(
            "ftpd_transfer_bytes", "Bytes on data connections by direction", labels=["direction"]
        )
        for direction in ("download", "upload"):
            c.add_metric([direction], snap["bytes"].get(direction, 0))
        yield c

        c = CounterMetricFamily(
            "ftpd_error_replies", "Replies with a 4xx or 5xx code", labels=["code"]
        )
        for code, n in sorted(snap["errors"].items()):
            c.add_metric([str(code)], n)
        yield c

        yield _gauge(
            GaugeMetricFamily,
            "ftpd_passive_ports_in_use",
            "Passive ports this process listens on now",
            snap["passive_in_use"],
        )
        yield _gauge(
            GaugeMetricFamily,
            "ftpd_passive_ports_capacity",
            "Size of the passive port range (all workers share it)",
            snap["passive_capacity"],
        )
        yield _gauge(
            GaugeMetricFamily,
            "ftpd_event_loop_lag_seconds",
            "How late the event loop ran the last 1 s timer",
            snap["loop_lag"],
        )


def _gauge(
    cls: Any, name: str, doc: str, value: float, labels: dict[str, str] | None = None
) -> Any:
    g = cls(name, doc, labels=list(labels) if labels else None)
    g.add_metric(list(labels.values()) if labels else [], value)
    return g


class MetricsEndpoint:
    """The HTTP endpoint serving one Observer's metrics (prometheus-client's WSGI thread)."""

    def __init__(self, observer: Observer, host: str, port: int) -> None:
        from prometheus_client import (
            CollectorRegistry,
            PlatformCollector,
            ProcessCollector,
            start_http_server,
        )

        # A registry of our own, not the global one: several servers can live in one process
        # (tests), and nothing a library registers globally leaks into our output.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(observer))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        try:
            self._httpd, self._thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self.host = host
        self.port = int(self._httpd.server_address[1])

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
