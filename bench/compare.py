"""Run ftpd-load against ftpd and pyftpdlib, back to back on loopback, and tabulate the figures.

Every (case, repeat, server) run starts a fresh server process, so that memory per session is
measured from a cold server each time; the servers alternate (ftpd first on even repeats) so that
the machine's drifts hit both alike. Both servers serve a fresh root on tmpfs (``--root-dir``,
default /dev/shm), so that no disk is measured; the big file is one file hard-linked into each
root (same page cache). The system load average is recorded before each run: other work on the
machine makes the figures noisy, and the table says how noisy it was.

Writes a markdown report (``--out``): the machine, one table of medians with min-max over
``--repeat`` runs, the ratio to the reference server and whether each of issue 5's targets is
met, then the exact commands and the list of runs with their load. ``--raw`` keeps every JSON.

The ``retr-stall-*`` cases (issue 18) serve from a real disk (``--disk-dir``, default /var/tmp)
and measure another session's NOOP round trips during one big download (``bench/retr_stall.py``);
the cold one drops the page cache first, so it must run as root.

    python bench/compare.py --preset quick --repeat 1           # a few minutes
    python bench/compare.py --preset issue --repeat 3           # issue 5's scale, about 45 min
    python bench/compare.py --preset issue --cases hold,mixed   # some cases only
    python bench/compare.py --preset issue --cases retr-stall-cold,retr-stall-cached
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

from cases import SCALES, Case, Metric, Target, Variant, make_cases  # noqa: E402

USER, PASSWORD = "bench", "bench-pass"
BIG_FILE = "big.bin"
# Passive ranges: outside the ephemeral range (32768-60999), one per server kind, and outside
# the test suite's 61000-65499, so that a benchmark and the tests can run at the same time.
PASV = {
    "ftpd": "20000-20999",
    "pyftpdlib": "21000-21999",
    "sink": "22000-22999",
    "floor": "23000-23999",
}
SCALES_SIZE = ["1G"]  # the preset's big-file size (the sink's file), set by main()
# --flag -> (the Scale field it overrides, its type, help)
SCALE_FLAGS = {
    "hold": ("hold", int, "sessions held (hold)"),
    "mixed": ("mixed", int, "sessions (mixed)"),
    "think": ("think", float, "mean think time, s (mixed)"),
    "mixed-duration": ("mixed_duration", float, "seconds (mixed)"),
    "workers-hold": ("workers_hold", int, "sessions held with ftpd --workers 2"),
    "size": ("size", str, "big file (retr, stor), e.g. 1G"),
    "duration": ("duration", float, "seconds per run (all but mixed)"),
    "concurrency": ("concurrency", int, "clients (logins, small)"),
    "procs": ("procs_big", int, "ftpd-load processes for hold and mixed"),
    "source-addresses": ("sources", str, "for hold and mixed, e.g. 127.0.0.1-127.0.0.8"),
}
Results = dict[tuple[str, str], list[dict[str, Any]]]  # (case key, variant name) -> results


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until something accepts on 127.0.0.1:port (or fail if the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on port {port} after {timeout} s")


def server_command(v: Variant, case: Case, port: int, root: Path, users: Path | None) -> list[str]:
    """The command line that starts ``v`` for ``case``."""
    if v.kind == "floor":
        cmd = [sys.executable, str(HERE / "floor_server.py"), "--port", str(port)]
        return cmd + ["--pasv-ports", PASV["floor"]]
    if v.kind == "sink":
        cmd = [sys.executable, str(HERE / "sink_server.py"), "--port", str(port)]
        return cmd + ["--file-size", SCALES_SIZE[0], "--pasv-ports", PASV["sink"]]
    if v.kind == "pyftpdlib":
        cmd = [sys.executable, str(HERE / "pyftpdlib_server.py"), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--root", str(root), "--user", USER, "--password", PASSWORD]
        cmd += ["--pasv-ports", PASV["pyftpdlib"], "--log-level", case.log_level]
        if case.tls:
            cert, key = CERTS[case.tls]
            cmd += ["--certfile", str(cert), "--keyfile", str(key)]
        return cmd
    cmd = [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--root", str(root)]
    if users is not None:
        cmd += ["--users-file", str(users)]
    else:
        cmd += ["--user", USER, "--password", PASSWORD]
    cmd += ["--max-per-ip", "0", "--max-sessions", "0", "--pasv-ports", PASV["ftpd"]]
    if case.tls:
        cert, key = CERTS[case.tls]
        cmd += ["--tls", "explicit", "--tls-cert", str(cert), "--tls-key", str(key)]
    return cmd + ["--log-level", case.log_level, *v.flags]


CERTS: dict[str, tuple[Path, Path]] = {}  # key type -> (certificate, key), made by make_certs


def make_certs(work: Path, kinds: set[str]) -> None:
    """A self-signed certificate for 127.0.0.1 per key type ("ec": ECDSA P-256, "rsa": RSA
    2048), as an operator would make one with openssl (docs/TLS.md)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    for kind in sorted(kinds):
        key = (
            ec.generate_private_key(ec.SECP256R1())
            if kind == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(san, critical=False)
            .sign(key, hashes.SHA256())
        )
        cpath, kpath = work / f"cert-{kind}.pem", work / f"key-{kind}.pem"
        cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kpath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        CERTS[kind] = (cpath, kpath)


class Server:
    """One server process started for one run."""

    def __init__(self, cmd: list[str], port: int, log: Path, workers: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("FTPD_CONFIG", None)
        self._log = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_listening(port, self.proc)
            # Let every worker start and the server go idle before the "before" sample.
            time.sleep(1.0 if workers > 1 else 0.3)
        except BaseException as exc:
            self.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{cmd[:3]} did not start: {exc}\n{tail}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def conntrack() -> tuple[int, int] | None:
    """(entries, maximum) of the connection-tracking table, if the kernel has one."""
    base = Path("/proc/sys/net/netfilter")
    try:
        return int((base / "nf_conntrack_count").read_text()), int(
            (base / "nf_conntrack_max").read_text()
        )
    except (OSError, ValueError):
        return None


def calm_down(gap: float) -> None:
    """Before a run with thousands of connections: sleep ``gap`` s, then (bounded by 120 s more)
    until the connection-tracking table is below a third full (TIME_WAIT entries expire)."""
    time.sleep(gap)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ct = conntrack()
        if ct is None or ct[0] < ct[1] // 3:
            return
        time.sleep(5)


def ftpd_version() -> str:
    """The commit the ftpd code comes from, ``+dirty`` when ftpd/ differs from it (read-only git).

    Recorded per run: on a shared working tree the server code may change between runs.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "ftpd"], cwd=REPO, capture_output=True
        ).returncode
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


FTPD_VERSION = ["unknown"]


def load_command(case: Case, port: int, pid: int, out: Path) -> list[str]:
    """The ftpd-load command of one run (or the case's own tool, which takes the same flags)."""
    user = "bench-users" if case.users_file else USER
    tool = [str(HERE / case.tool)] if case.tool else ["-m", "ftpd.load"]
    cmd = [sys.executable, *tool, *case.load, "--port", str(port)]
    cmd += ["--user", user, "--password", PASSWORD, "--server-pid", str(pid)]
    return cmd + ["--json", str(out), "--progress", "none"]


def big_name(case: Case) -> str:
    """The name of the big file a case links into its roots (one per size)."""
    return f"big-{case.big_size or SCALES_SIZE[0]}.bin"


def make_big_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(block)


def make_users_file(work: Path) -> Path:
    """A users file with one user (scrypt hash from ``ftpd passwd``); homes are created per run."""
    proc = subprocess.run(
        [sys.executable, "-m", "ftpd", "passwd"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    hashed = proc.stdout.strip().splitlines()[-1]
    path = work / "users.toml"
    path.write_text(f'[[users]]\nname = "bench-users"\npassword_hash = "{hashed}"\nhome = "home"\n')
    return path


def run_one(case: Case, v: Variant, n: int, work: Path, a: argparse.Namespace) -> dict[str, Any]:
    """Start a fresh server, run the case's ftpd-load command, stop it; the JSON result."""
    tag = f"{case.key}-{v.name.replace(' ', '').replace('--', '-')}-{n}"
    base = a.disk_work if case.disk else work
    root = base / tag
    root.mkdir()
    users = None
    if case.users_file and v.kind == "ftpd":
        users = root / "users.toml"
        shutil.copy(a.users_template, users)
        root = root / "home"
        root.mkdir()
    if case.big_file:
        os.link(base / big_name(case), root / BIG_FILE)
    port = free_port()
    cmd = server_command(v, case, port, root, users)
    workers = int(v.flags[v.flags.index("--workers") + 1]) if "--workers" in v.flags else 1
    load1 = os.getloadavg()
    server = Server(cmd, port, work / f"{v.kind}.log", workers)
    out = work / f"{tag}.json"
    lcmd = load_command(case, port, server.proc.pid, out)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(lcmd, capture_output=True, text=True, timeout=case.timeout, cwd=REPO)
    finally:
        server.stop()
        shutil.rmtree(base / tag, ignore_errors=True)
    if not out.exists():
        raise RuntimeError(f"{tag}: no result (status {proc.returncode})\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["bench"] = {
        "case": case.key,
        "variant": v.name,
        "repeat": n,
        "status": proc.returncode,
        "seconds": round(time.monotonic() - t0, 1),
        "loadavg_before": [round(x, 2) for x in load1],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "ftpd_version": FTPD_VERSION[0],
        "server_command": cmd,
        "load_command": lcmd,
    }
    subst = {
        str(base / tag): "ROOT",
        str(out): "result.json",
        str(HERE) + "/": "bench/",
        str(port): "PORT",
        str(server.proc.pid): "PID",
    }
    result["bench"]["server_shell"] = _shell(cmd, subst)
    result["bench"]["load_shell"] = _shell(lcmd, subst)
    if result["errors_total"]:
        print(f"  {tag}: errors {result['errors']}", file=sys.stderr)
    return result


# -- the report --------------------------------------------------------------------------------


def _fmt_value(v: float) -> str:
    mag = abs(v)
    digits = 0 if mag >= 100 or v == int(v) else 1 if mag >= 10 else 2 if mag >= 1 else 3
    return f"{v:,.{digits}f}"


def _cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    text = _fmt_value(statistics.median(values))
    if len(values) > 1 and min(values) != max(values):
        text += f" ({_fmt_value(min(values))}–{_fmt_value(max(values))})"
    return text


def _values(results: Results, case: str, variant: str, m: Metric) -> list[float]:
    return [v for r in results.get((case, variant), []) if (v := m.read(r)) is not None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _verdict(t: Target, case: Case, m: Metric, results: Results) -> tuple[str, str]:
    """(target text, met text) for ftpd's figure, the case's first variant."""
    mine = _values(results, case.key, case.variants[0].name, m)
    if not mine:
        return t.text, "no data"
    other = _median(_values(results, t.versus_case or case.key, t.versus, m))
    checks = [t.met(v, other) for v in mine] if t.every_run else [t.met(_median(mine), other)]
    if any(c is None for c in checks):
        return t.text, f"no {t.versus} figure"
    return t.text, "**met**" if all(checks) else "**not met**"


def table(cases: list[Case], results: Results) -> str:
    """The markdown table of every case's figures."""
    lines = [
        "| case | figure | ftpd (or the named server) | reference | ftpd / ref | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        subject = case.variants[0].name
        ref = case.variants[1].name if len(case.variants) > 1 else ""
        for i, m in enumerate(case.metrics):
            mine = _values(results, case.key, subject, m)
            theirs = _values(results, case.key, ref, m) if ref else []
            ratio = "—"
            if mine and theirs and statistics.median(theirs):
                ratio = f"{statistics.median(mine) / statistics.median(theirs):.2f}×"
            ref_cell = "—"
            if ref:
                ref_cell = _cell(theirs)
                if ref != "pyftpdlib":
                    ref_cell = f"{ref}: {ref_cell}"
            title = case.title if i == 0 else ""
            if i == 0 and subject != "ftpd":
                title += f" ({subject})"
            verdicts = [_verdict(t, case, m, results) for t in m.targets] or [("", "")]
            target = "; ".join(v[0] for v in verdicts if v[0])
            met = "; ".join(v[1] for v in verdicts if v[1])
            lines.append(
                f"| {title} | {m.label} | {_cell(mine)} | {ref_cell} | {ratio} | {target} | {met} |"
            )
    return "\n".join(lines)


def _shell(cmd: list[str], subst: dict[str, str]) -> str:
    """``cmd`` as one shell line, with the run's own paths, port and pid made generic."""
    out = []
    for part in cmd:
        if part == sys.executable:
            part = "python"
        if part in subst:
            part = subst[part]  # the port and the pid: whole arguments only
        for old, new in subst.items():
            if "/" in old:
                part = part.replace(old, new)
        ok = part and all(c.isalnum() or c in "-_./,=:" for c in part)
        out.append(part if ok else repr(part))
    return " ".join(out)


def commands(cases: list[Case], results: Results) -> str:
    """The exact command lines of the first run of each case and variant."""
    lines = []
    for case in cases:
        lines.append(f"- **{case.title}**" + (f" ({case.note})" if case.note else ""))
        load = ""
        for v in case.variants:
            runs = results.get((case.key, v.name))
            if runs:
                lines.append(f"  - {v.name}: `{runs[0]['bench']['server_shell']}`")
                load = load or runs[0]["bench"]["load_shell"]
        if load:
            lines.append(f"  - ftpd-load: `{load}`")
    return "\n".join(lines)


def runs_table(cases: list[Case], results: Results) -> str:
    """One line per run: its load average, errors and length."""
    lines = [
        "| case | server | run | load avg 1/5 min before | errors | exit | seconds | ftpd code |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        for v in case.variants:
            for r in results.get((case.key, v.name), []):
                b = r["bench"]
                la = b["loadavg_before"]
                lines.append(
                    f"| {case.key} | {v.name} | {b['repeat'] + 1} | {la[0]:.2f} / {la[1]:.2f} | "
                    f"{r['errors_total']} | {b['status']} | {b['seconds']} | "
                    f"{b.get('ftpd_version', 'not recorded')} |"
                )
    return "\n".join(lines)


def machine() -> str:
    """One paragraph on the machine and the software versions."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for mod in ("uvloop", "pyftpdlib"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, '__version__', getattr(m, '__ver__', '?'))}")
        except ImportError:
            versions.append(f"{mod} missing")
    return (
        f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {', '.join(versions)}; "
        f"RLIMIT_NOFILE {os.sysconf('SC_OPEN_MAX')}."
    )


def report(cases: list[Case], results: Results, a: argparse.Namespace, spent: float) -> str:
    """The whole markdown report."""
    loads = [r["bench"]["loadavg_before"][0] for rs in results.values() for r in rs]
    load_text = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "n/a"
    scale = f" with {a.overrides}" if a.overrides else ""
    reused = " Results of cases not run by this invocation come from --reuse." if a.reuse else ""
    first = min((r["started"] for rs in results.values() for r in rs), default="")
    last = max((r["ended"] for rs in results.values() for r in rs), default="")
    when = f"Runs from {first[:16]} to {last[:16]} UTC" if first else "No runs"
    return (
        f"## ftpd vs pyftpdlib: preset `{a.preset}`{scale}, "
        f"{a.repeat} run(s) per server and case\n\n"
        f"Machine: {machine()} {when}; this invocation ran {spent / 60:.0f} min.{reused} "
        "1-minute load average before each run "
        f"{load_text} (other work shared the machine). Roots on {a.root_dir} (tmpfs); "
        f"those of the real-disk cases on {a.disk_dir}. Figures "
        "are medians (min–max) over the runs; targets are checked on ftpd's median unless they "
        "say 'every run'.\n\n"
        f"{table(cases, results)}\n\n### Commands\n\n"
        "ROOT is a fresh directory on tmpfs, PORT a free port, PID the server's pid.\n\n"
        f"{commands(cases, results)}\n\n### Runs\n\n{runs_table(cases, results)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options, run every case, write the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(SCALES), default="quick")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cases", default="", help="comma-separated case keys (default: all)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--root-dir", default="/dev/shm", help="where server roots go (tmpfs)")
    p.add_argument(
        "--disk-dir",
        default="/var/tmp",
        help="where the roots of the real-disk cases (retr-stall-*) go: a real disk, not tmpfs",
    )
    p.add_argument("--gap", type=float, default=20.0, help="seconds of rest before heavy runs")
    p.add_argument("--out", default="bench/results.md", help="markdown report")
    p.add_argument("--raw", default="", help="JSON file with every run's result")
    p.add_argument("--quick", action="store_true", help="the same as --preset quick")
    p.add_argument(
        "--report-only", action="store_true", help="run nothing: rewrite the report of --reuse"
    )
    p.add_argument(
        "--reuse",
        default="",
        help="a --raw file of an earlier run: report its results too, for the cases not run now",
    )
    g = p.add_argument_group("scale (overrides the preset's)")
    for flag, (field, kind, text) in SCALE_FLAGS.items():
        g.add_argument(f"--{flag}", dest=field, type=kind, default=None, help=text)
    a = p.parse_args(argv)
    if a.report_only and not a.reuse:
        p.error("--report-only needs --reuse")
    if a.quick:
        a.preset = "quick"
    fields = [field for field, _, _ in SCALE_FLAGS.values()]
    overrides = {k: getattr(a, k) for k in fields if getattr(a, k) is not None}
    scale = dataclasses.replace(SCALES[a.preset], **overrides)
    a.overrides = overrides
    all_cases = make_cases(scale)
    if a.list:
        for c in all_cases:
            print(f"{c.key:14} {c.title}: {c.tool or 'ftpd-load'} {' '.join(c.load)}")
        return 0
    wanted = [k.strip() for k in a.cases.split(",") if k.strip()]
    unknown = set(wanted) - {c.key for c in all_cases}
    if unknown:
        p.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    cases = [c for c in all_cases if not wanted or c.key in wanted]
    SCALES_SIZE[0] = scale.size
    from ftpd.load.options import parse_size

    results: Results = {}
    run_keys = set() if a.report_only else {c.key for c in cases}
    if a.reuse:
        for key, runs in json.loads(Path(a.reuse).read_text()).items():
            case_key, variant = key.split("/", 1)
            if case_key not in run_keys:
                results[(case_key, variant)] = runs
        cases = [
            c for c in all_cases if c.key in run_keys or (c.key, c.variants[0].name) in results
        ]
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="ftpd-compare-", dir=a.root_dir) as tmp,
        tempfile.TemporaryDirectory(prefix="ftpd-compare-", dir=a.disk_dir) as disk_tmp,
    ):
        work = Path(tmp)
        a.disk_work = Path(disk_tmp)
        for c in cases:
            big = (a.disk_work if c.disk else work) / big_name(c)
            if c.big_file and c.key in run_keys and not big.exists():
                make_big_file(big, parse_size(c.big_size or scale.size))
        make_certs(work, {c.tls for c in cases if c.tls and c.key in run_keys})
        if any(c.users_file for c in cases):
            a.users_template = make_users_file(work)
        try:
            for case in cases:
                if case.key not in run_keys:
                    continue  # reused
                for n in range(a.repeat):
                    order = case.variants if n % 2 == 0 else case.variants[::-1]
                    for v in order:
                        if case.heavy:
                            calm_down(a.gap)
                        print(
                            f"{case.key} run {n + 1}/{a.repeat}: {v.name} "
                            f"(load {os.getloadavg()[0]:.2f})",
                            file=sys.stderr,
                            flush=True,
                        )
                        FTPD_VERSION[0] = ftpd_version()
                        r = run_one(case, v, n, work, a)
                        results.setdefault((case.key, v.name), []).append(r)
        except KeyboardInterrupt:
            print("interrupted: reporting what ran", file=sys.stderr)
        finally:
            text = report(cases, results, a, time.monotonic() - started)
            print(text)
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(text)
            if a.raw:
                raw = {f"{k}/{v}": rs for (k, v), rs in results.items()}
                Path(a.raw).write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
