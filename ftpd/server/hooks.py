"""Operator hooks: a command run, or a webhook POSTed, when something happens in a session.

Both consume the server's event stream (``ftpd.events``: the same ``Event`` objects, with the
same fields, that an application's ``Server.subscribe`` callbacks get), so a hook sees exactly
what the library sees and costs nothing when none is configured.

Commands (``on_upload = "/usr/local/bin/scan --quiet"``, and ``on_download``, ``on_delete``,
``on_rename``, ``on_login``) are split with ``shlex`` and executed directly, never through a
shell unless the operator writes one (``on_upload = "sh -c '...'"``): a file name a client chose
reaches the command only as an environment variable, never as shell text. The event is in
``FTPD_EVENT``, ``FTPD_USER``, ``FTPD_PATH`` (as the client sees it), ``FTPD_FILE`` (on disk),
``FTPD_SIZE``, ``FTPD_REMOTE_IP`` ... (``event_env``); the server's own ``FTPD_*`` variables
(which may hold a password) are not passed on. Commands run as asyncio subprocesses, at most
``hook_concurrency`` at once; the rest wait in the event bus's bounded queue (whose overflow is
counted and logged). A command still running after ``hook_timeout`` seconds is killed with its
whole process group. Exit statuses, timeouts and start failures are logged and counted
(``ftpd_hook_runs_total``); none of it ever changes a reply: the client had its answer first.

The webhook is in ``webhook.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from ..config import Config, ConfigError, show
from ..events import Event, EventBus, EventKind
from .hookdata import HookStats, event_json
from .webhook import Webhook, check_webhook

__all__ = [
    "HOOK_KEYS",
    "CommandHooks",
    "HookStats",
    "check_hooks",
    "event_env",
    "event_json",
    "start_hooks",
]

log = logging.getLogger("ftpd.hooks")

# Config key -> the event that runs it.
HOOK_KEYS: dict[str, EventKind] = {
    "on_upload": EventKind.UPLOAD,
    "on_download": EventKind.DOWNLOAD,
    "on_delete": EventKind.DELETE,
    "on_rename": EventKind.RENAME,
    "on_login": EventKind.LOGIN,
}
STDERR_KEPT = 2048  # bytes of a failed command's standard error quoted in the log line


def event_env(event: Event, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a hook command: ``base`` without its ``FTPD_*`` variables, plus the
    event as ``FTPD_<FIELD>`` (``None`` as an empty string, booleans as 0/1)."""
    env = {k: v for k, v in base.items() if not k.startswith("FTPD_")}
    for key, value in event_json(event).items():
        if value is None:
            value = ""
        elif isinstance(value, bool):
            value = int(value)
        env["FTPD_" + key.upper()] = str(value)
    return env


def _argv(key: str, command: str) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {key}: {show(command)} ({exc})") from None
    if not argv:
        raise ConfigError(f"invalid value for {key}: {show(command)} (expected a command)")
    if shutil.which(argv[0]) is None:
        raise ConfigError(
            f"invalid value for {key}: {show(command)} "
            f"(no executable {show(argv[0])}; give a path or a program on PATH)"
        )
    return argv


def check_hooks(config: Config) -> dict[EventKind, list[str]]:
    """The configured commands as argv lists; ``ConfigError`` (one line) for a bad one, so that a
    typo stops start-up instead of failing silently on every upload."""
    commands = {
        kind: _argv(key, getattr(config, key))
        for key, kind in HOOK_KEYS.items()
        if getattr(config, key).strip()
    }
    if config.webhook_url:
        check_webhook(config)
    return commands


class CommandHooks:
    """Runs the configured commands for the events it is subscribed to (see the module doc)."""

    def __init__(
        self, commands: dict[EventKind, list[str]], config: Config, stats: HookStats
    ) -> None:
        self.commands = commands
        self.timeout = config.hook_timeout
        self.stats = stats
        self.slots = asyncio.Semaphore(config.hook_concurrency)
        self.running: set[asyncio.Task[None]] = set()

    async def __call__(self, event: Event) -> None:
        """The bus delivers one event at a time: waiting for a slot here is what bounds the
        running commands (and lets the bus's queue absorb a burst)."""
        argv = self.commands.get(event.kind)
        if argv is None:
            return
        await self.slots.acquire()
        task = asyncio.get_running_loop().create_task(self._run(argv, event))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _run(self, argv: list[str], event: Event) -> None:
        name = event.kind.value
        try:
            result = await self._spawn(argv, event)
        except Exception:
            log.exception("hook %s: %s failed", name, argv[0])
            result = "error"
        finally:
            self.slots.release()
        self.stats.runs[(name, result)] += 1

    async def _spawn(self, argv: list[str], event: Event) -> str:
        name = event.kind.value
        try:
            # A process group of its own: a timeout kills what the command started too.
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=event_env(event, os.environ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            log.error("hook %s: cannot run %s: %s", name, argv[0], exc.strerror or exc)
            return "error"
        assert proc.stderr is not None
        tail = asyncio.get_running_loop().create_task(_tail(proc.stderr))
        try:
            status = await asyncio.wait_for(proc.wait(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            tail.cancel()
            log.error("hook %s: %s killed after %.1f s (hook_timeout)", name, argv[0], self.timeout)
            return "timeout"
        stderr = await tail
        if status != 0:
            why = f"exit status {status}" if status > 0 else f"signal {-status}"
            log.error(
                "hook %s: %s failed (%s) for %s %s%s",
                name,
                argv[0],
                why,
                event.user,
                event.path,
                f": {stderr}" if stderr else "",
            )
            return "failed"
        log.debug("hook %s: %s ok for %s %s", name, argv[0], event.user, event.path)
        return "ok"

    async def close(self, timeout: float) -> None:
        """Let running commands finish within ``timeout`` seconds; their timeout kills the rest."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)


async def _tail(stream: asyncio.StreamReader) -> str:
    """The last ``STDERR_KEPT`` bytes of a command's standard error, read as it comes (a command
    writing a lot never blocks on a full pipe, and memory stays bounded)."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-STDERR_KEPT:]
    return " ".join(kept.decode("utf-8", "replace").split())


class Hooks:
    """The hook consumers of one server process: commands and the webhook."""

    def __init__(self, commands: CommandHooks | None, webhook: Any) -> None:
        self.commands = commands
        self.webhook = webhook

    def update(self, config: Config, commands: dict[EventKind, list[str]]) -> list[str]:
        """Take up a reloaded configuration; the keys that need a restart to change."""
        kept = []
        if self.commands is not None:
            self.commands.commands = commands
            self.commands.timeout = config.hook_timeout
        elif commands:
            kept.append("on_* (no hook commands were running)")
        if self.webhook is not None:
            if config.webhook_url:
                self.webhook.configure(config)
            else:
                self.webhook.kinds = frozenset()  # turned off: queue nothing more
        elif config.webhook_url:
            kept.append("webhook_url (no webhook was running)")
        return kept

    async def close(self, timeout: float) -> None:
        if self.commands is not None:
            await self.commands.close(timeout)
        if self.webhook is not None:
            await self.webhook.close(timeout)


def start_hooks(
    config: Config, bus: EventBus, stats: HookStats, commands: dict[EventKind, list[str]]
) -> Hooks | None:
    """Subscribe the configured hooks to ``bus``; ``None`` when there are none."""
    runner = None
    if commands:
        runner = CommandHooks(commands, config, stats)
        bus.subscribe(runner, HOOK_KEYS.values())  # all: a reload may add a command
    webhook = None
    if config.webhook_url:
        webhook = Webhook(config, stats)
        bus.subscribe(webhook.enqueue)  # every kind: a reload may change webhook_events
    if runner is None and webhook is None:
        return None
    return Hooks(runner, webhook)
