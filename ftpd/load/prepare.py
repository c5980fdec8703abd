"""Set-up before a run and clean-up after it, done by the parent over one session of its own.

Files a scenario needs are uploaded into a per-run directory ``ftpd-load-<time>-<pid>`` under the
user's home (from PWD), so concurrent runs do not collide and clean-up only ever touches what this
run created: it lists that directory, deletes what is in it and removes it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from ftpd.load.client import FtpClient, ProtocolError, ReplyError, error_key, error_text
from ftpd.load.hints import hint_for
from ftpd.load.options import Options, Prepared
from ftpd.load.worker import make_ssl_context

LIST_FILE_SIZE = 1024  # bytes of each file in the directory that ``mixed`` lists


class SetupError(Exception):
    """The server cannot be prepared for the run (the message is for the operator)."""


def parse_257(text: str) -> str:
    """The path in a 257 reply (RFC 959 §7: quoted, with ``""`` for a quote inside)."""
    start = text.find('"')
    if start < 0:
        raise SetupError(f"cannot parse PWD reply: {text!r}")
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if text[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out)
        out.append(ch)
        i += 1
    raise SetupError(f"cannot parse PWD reply: {text!r}")


async def connect(opts: Options) -> FtpClient:
    """One logged-in session in binary mode (from the first source address, if any)."""
    loop = asyncio.get_running_loop()
    source = opts.source_addresses[0] if opts.source_addresses else None
    family = socket.AF_UNSPEC
    if source:
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
    infos = await loop.getaddrinfo(opts.host, opts.port, family=family, type=socket.SOCK_STREAM)
    fam, _, _, _, addr = infos[0]
    s = FtpClient()
    ctx = make_ssl_context(opts) if opts.tls else None
    try:
        await s.connect(addr, fam, source, ctx, opts.host, opts.implicit_tls)
        if ctx is not None:
            await s.start_tls()
        await s.login(opts.user, opts.password)
        await s.expect("TYPE I", (200,))
    except BaseException:
        s.close()
        raise
    return s


async def _upload(s: FtpClient, opts: Options, path: str, size: int, prep: Prepared) -> None:
    await s.upload(f"STOR {path}", size, opts.epsv)
    prep.created_files.append(path)


async def _mkd(s: FtpClient, path: str, prep: Prepared) -> None:
    await s.expect(f"MKD {path}", (257,))
    prep.created_dirs.append(path)


async def prepare(opts: Options) -> Prepared:
    """Create what the scenario needs on the server; raises SetupError with a clear message."""
    prep = Prepared()
    if opts.scenario in ("hold", "logins"):
        return prep  # nothing to prepare; a server refusing logins is a result, not a set-up error
    try:
        async with asyncio.timeout(max(opts.timeout, 60.0) + opts.size / 10e6):
            s = await connect(opts)
            try:
                await _prepare(s, opts, prep)
            finally:
                await _quit(s)
    except SetupError:
        raise
    except (ReplyError, ProtocolError, OSError, TimeoutError) as exc:
        await cleanup(opts, prep)
        raise SetupError(setup_message(opts, exc)) from exc
    return prep


def setup_message(opts: Options, exc: BaseException) -> str:
    """What went wrong preparing the server: its words (or the error), then cause and fix."""
    address = f"{opts.host}:{opts.port}"
    text = error_text(exc)
    if isinstance(exc, TimeoutError):
        text = "no answer in time"
    lines = [f"preparing the server at {address} failed: {text}"]
    hint = hint_for(f"setup {error_key(exc)}", text, address)
    if hint is not None:
        lines += [f"  cause: {hint.cause}", f"  fix: {hint.fix}"]
    return "\n".join(lines)


async def _prepare(s: FtpClient, opts: Options, prep: Prepared) -> None:
    _, text = await s.expect("PWD", (257,))
    home = parse_257(text).rstrip("/")
    prep.run_dir = f"{home}/ftpd-load-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    if opts.scenario in ("retr", "small") and opts.file:
        prep.retr_path = opts.file
        try:
            _, size_text = await s.expect(f"SIZE {opts.file}", (213,))
            prep.retr_size = int(size_text.split()[0])
        except ReplyError as exc:
            if exc.code == 550:
                raise SetupError(f"--file {opts.file}: {exc.code} {exc.text}") from exc
            prep.retr_size = -1  # no SIZE (RFC 3659) on this server: sizes go unchecked
    uploads = opts.scenario in ("stor", "mixed") or opts.mix.get("stor", 0) > 0
    if uploads or not prep.retr_path:
        await _mkd(s, prep.run_dir, prep)
    else:
        prep.run_dir = ""  # a download-only run against --file leaves no trace
    if opts.scenario in ("retr", "small") and not opts.file:
        prep.retr_path = f"{prep.run_dir}/{opts.scenario}.bin"
        prep.retr_size = opts.size
        await _upload(s, opts, prep.retr_path, opts.size, prep)
    elif opts.scenario == "mixed":
        prep.retr_path = f"{prep.run_dir}/file.bin"
        prep.retr_size = opts.size
        await _upload(s, opts, prep.retr_path, opts.size, prep)
        prep.list_dir = f"{prep.run_dir}/dir"
        await _mkd(s, prep.list_dir, prep)
        for i in range(opts.list_files):
            await _upload(s, opts, f"{prep.list_dir}/f{i:04d}.txt", LIST_FILE_SIZE, prep)


async def _quit(s: FtpClient) -> None:
    try:
        async with asyncio.timeout(5.0):
            await s.quit(linger=0.2)
    except Exception:
        s.close()


async def cleanup(opts: Options, prep: Prepared) -> list[str]:
    """Remove the run directory and everything in it; return the problems met (if any).

    With ``--keep`` the directory stays. Files uploaded by the workers are found by listing the
    directory (NLST), so an interrupted run is cleaned as well as a complete one.
    """
    if not prep.created_dirs or opts.keep:
        return []
    problems: list[str] = []
    try:
        async with asyncio.timeout(max(opts.timeout, 30.0)):
            s = await connect(opts)
            try:
                for directory in reversed(prep.created_dirs):
                    try:
                        listing = await s.fetch(f"NLST {directory}", opts.epsv)
                    except ReplyError:
                        listing = b""  # some servers answer 450/550 for an empty directory
                    for raw in listing.decode("utf-8", "replace").splitlines():
                        name = raw.strip()
                        if not name:
                            continue
                        path = (
                            name
                            if name.startswith("/")
                            else f"{directory}/{name.rsplit('/', 1)[-1]}"
                        )
                        if path in prep.created_dirs:
                            continue
                        try:
                            await s.expect(f"DELE {path}", (250,))
                        except ReplyError as exc:
                            problems.append(f"DELE {path}: {exc.code} {exc.text}")
                    try:
                        await s.expect(f"RMD {directory}", (250,))
                    except ReplyError as exc:
                        problems.append(f"RMD {directory}: {exc.code} {exc.text}")
            finally:
                await _quit(s)
    except (ReplyError, OSError, TimeoutError) as exc:
        problems.append(f"clean-up failed: {exc!r}")
    return problems
