"""Run ``python -m ftpd.load`` as a subprocess and read its JSON result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def server_args(server: Any) -> list[str]:
    """Connection options for a fixture server object."""
    return [
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--user",
        server.user,
        "--password",
        server.password,
    ]


def run_load(
    args: list[str], tmp_path: Path, timeout: float = 60.0
) -> tuple[int, dict[str, Any], str]:
    """Run the tool with ``args`` plus ``--json``; return (exit status, result, stderr)."""
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*.json')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ftpd.load", *args, "--json", str(out), "--progress", "plain"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def assert_sane(result: dict[str, Any], scenario: str) -> None:
    """Fields every result has, with consistent values."""
    assert result["tool"] == "ftpd-load" and result["scenario"] == scenario
    assert result["started"] < result["ended"]
    assert "password" not in result["params"]
    assert result["run_s"] > 0
    assert result["errors_total"] == sum(result["errors"].values())
    for op, lat in result["latency"].items():
        assert lat["count"] == result["counts"][op]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["mean"] <= lat["max"]
    assert result["timeline"], "no progress points"
