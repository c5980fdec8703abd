"""The typed boundary between the protocol core and the IO layer.

Every filesystem operation crosses it as its own frozen request class (``ftpd.proto.requests``), and
the control channel performs it through one table keyed by that class: nothing is looked up by name.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from ftpd.proto import requests as rq
from ftpd.proto.requests import FsRequest, Outcome
from ftpd.server.control import FS_CALLS

# The FileSystem method (ftpd.fs.base) each request stands for.
METHOD = {
    rq.Stat: "stat",
    rq.ListDir: "list",
    rq.OpenListing: "open_listing",
    rq.OpenRead: "open_read",
    rq.OpenWrite: "open_write",
    rq.MakeDir: "mkdir",
    rq.RemoveDir: "rmdir",
    rq.Delete: "delete",
    rq.Rename: "rename",
    rq.SetMtime: "set_mtime",
    rq.Chmod: "chmod",
    rq.UniqueName: "unique_name",
}


FS_REQUESTS = sorted(
    (
        c
        for _, c in inspect.getmembers(rq, inspect.isclass)
        if issubclass(c, FsRequest) and c is not FsRequest
    ),
    key=lambda c: c.__name__,
)


def test_every_filesystem_request_is_performed() -> None:
    assert set(FS_REQUESTS) == set(FS_CALLS) == set(METHOD)


class Recorder:
    """Answers any method call with the name and arguments it was called with."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: (name, args)


@pytest.mark.parametrize("kind", FS_REQUESTS, ids=lambda k: k.__name__)
def test_table_calls_the_method_with_the_fields_in_order(kind: type[FsRequest]) -> None:
    fields = dataclasses.fields(kind)  # type: ignore[arg-type]
    # One distinct value per field type (annotations are strings under `from __future__`).
    values = {"str": "/a/b", "int": 7, "float": 1.5, "bool": True, "Any": "format"}
    args = tuple(values[str(f.type)] for f in fields)
    req = kind(*args)
    assert FS_CALLS[kind](Recorder(), req) == (METHOD[kind], args)


@pytest.mark.parametrize("kind", FS_REQUESTS, ids=lambda k: k.__name__)
def test_requests_are_frozen(kind: type[FsRequest]) -> None:
    req = kind(*("/x",) * len(dataclasses.fields(kind)))  # type: ignore[arg-type]
    name = dataclasses.fields(kind)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(req, name, "/y")
    assert req == kind(*("/x",) * len(dataclasses.fields(kind)))  # type: ignore[arg-type]


def test_outcome_values_are_the_log_and_metric_labels() -> None:
    assert [o.value for o in Outcome] == [
        "ok",
        "aborted",
        "lost",
        "no-connection",
        "timeout",
        "tls-no-reuse",
        "tls-failed",
        "local-error",
    ]
    assert f"{Outcome.NO_CONNECTION}" == "no-connection"
