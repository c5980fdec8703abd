"""``workers = auto`` (issue 23): one per core, and enough processes that the per-process
descriptor limit holds ``max_sessions``; explained in one log line at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftpd.config import Config, ConfigError, validate
from ftpd.config_load import load_config
from ftpd.server.sizing import FDS_PER_SESSION, RESERVED_FDS, plan_workers


def test_auto_is_one_per_core_when_the_limit_holds_max_sessions() -> None:
    n, line = plan_workers(0, 10_000, 1_048_576, 4)
    assert n == 4
    assert line.startswith("workers auto: 4 (4 cores; max_sessions 10000")
    assert "\n" not in line


def test_auto_adds_workers_for_descriptors() -> None:
    # 100,000 sessions x 3 descriptors at 50,000 per process: 300,000 / 49,744 -> 7 processes.
    nofile = 50_000
    n, line = plan_workers(0, 100_000, nofile, 2)
    per_process = (nofile - RESERVED_FDS) // FDS_PER_SESSION
    assert n == -(-100_000 // per_process) == 7
    assert n * per_process >= 100_000 > (n - 1) * per_process
    assert "workers auto: 7 (2 cores" in line and "descriptor limit of 50000" in line


def test_auto_caps_at_64_and_says_why() -> None:
    n, line = plan_workers(0, 1_000_000, 1024, 2)
    assert n == 64
    assert "capped at 64" in line and "ulimit -n" in line


def test_auto_without_max_sessions_is_one_per_core() -> None:
    assert plan_workers(0, 0, 1024, 3)[0] == 3


def test_configured_count_is_kept_and_warned_about_when_short() -> None:
    assert plan_workers(2, 100, 1_000_000, 8) == (2, "workers: 2 (as configured)")
    n, line = plan_workers(1, 100_000, 20_000, 8)
    assert n == 1 and "warning" in line and "below max_sessions 100000" in line


def test_auto_in_flags_env_and_toml(tmp_path: Path) -> None:
    assert load_config(["--workers", "auto"], {}).workers == 0
    assert load_config([], {"FTPD_WORKERS": "AUTO"}).workers == 0
    toml = tmp_path / "c.toml"
    toml.write_text('workers = "auto"\n')
    assert load_config(["--config", str(toml)], {}).workers == 0
    assert load_config(["--workers", "3"], {}).workers == 3
    with pytest.raises(ConfigError, match="workers"):
        load_config(["--workers", "many"], {})
    with pytest.raises(ConfigError, match="or auto"):
        validate(Config(workers=65))
