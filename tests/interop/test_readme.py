"""README.md and .ci/run agree: the same test command, the same FTP client packages, and every
configuration key documented. (Not an interop test; it lives here because this suite owns
README.md and .ci/run.)
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ftpd.config import Config

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CI = (REPO / ".ci" / "run").read_text(encoding="utf-8")
TEST_CMD = re.compile(r"^\s*(python3 -m pytest[^|&;\n]*?)\s*(\|\||$)", re.MULTILINE)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_cmds = [m.group(1).strip() for m in TEST_CMD.finditer(CI)]
    assert len(ci_cmds) == 1, ci_cmds
    assert f"pip install -e '.[test]' && {ci_cmds[0]}\n" in README


def test_ci_installs_the_clients_readme_names() -> None:
    m = re.search(r"CLIENT_PACKAGES=\(([^)]*)\)", CI)
    assert m, "CLIENT_PACKAGES not found in .ci/run"
    packages = m.group(1).split()
    assert {"curl", "lftp", "tnftp", "ncftp", "wget", "rclone"} <= set(packages)
    assert f"apt-get install -y {' '.join(packages)}" in README
    assert "FTPD_REQUIRE_CLIENTS=1" in CI


def test_readme_documents_every_config_key() -> None:
    missing = [f.name for f in dataclasses.fields(Config) if f"| `{f.name}` |" not in README]
    assert not missing, f"keys missing from README.md's configuration table: {missing}"
