"""Coverage-guided fuzzing of the sans-IO core with atheris (libFuzzer), for long developer runs.

Not collected by pytest (CI runs the bounded hypothesis properties in ``test_fuzz_lines.py`` and
``test_fuzz_session.py``). Two targets, both asserting the same properties as those tests:

- ``lines``: the input, cut at positions taken from its first bytes, is fed to ``LineReader``;
  the lines must not depend on the cuts, and never more than ``max_line`` bytes are buffered.
- ``session``: the input is a control-connection byte stream for a fresh session (logged in or
  not, chosen by the first byte); it is played through the same IO-layer model as the stateful
  hypothesis test, with every invariant checked after each line.

Usage (atheris is a developer tool, not a dependency: ``pip install atheris``)::

    python -m tests.hardening.fuzz_atheris lines -max_total_time=600 -print_final_stats=1
    python -m tests.hardening.fuzz_atheris session -max_total_time=3600 CORPUS_DIR

libFuzzer options go after the target name; a crash leaves ``crash-<sha1>`` with the input,
which the same command replays when given the file name.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris")
    if len(sys.argv) < 2 or sys.argv[1] not in ("lines", "session"):
        sys.exit(__doc__)
    target = sys.argv.pop(1)

    with atheris.instrument_imports():
        from ftpd.proto.lines import LineReader

        from . import test_fuzz_session as model

    def fuzz_lines(data: bytes) -> None:
        if len(data) < 4:
            return
        cuts = sorted(b % (len(data) - 3) for b in data[:3])
        stream = data[3:]
        whole = LineReader(64).feed(stream)
        reader = LineReader(64)
        out: list[str] = []
        prev = 0
        for cut in [*cuts, len(stream)]:
            out += reader.feed(stream[prev:cut])
            prev = max(prev, cut)
            assert reader.buffered <= 64
        assert out == whole, (out, whole)

    def fuzz_session(data: bytes) -> None:
        if not data:
            return
        machine = model.SessionMachine()
        flags = data[0]
        machine.start(
            tls=("off", "explicit", "required")[flags % 3],
            attempts=flags >> 2 & 3,
            delay=0.0,
            promiscuous=bool(flags & 0x10),
            addrs=("127.0.0.1", "127.0.0.1"),
            perms="elradfmwMT" if flags & 0x20 else "elr",
        )
        if flags & 0x40:
            machine.log_in()
        for chunk in data[1:].split(b"\x00\x00"):  # two NULs: let a running transfer end
            machine.send(chunk, [])
            if machine.closed:
                machine.reconnect()
            elif machine.running is not None:
                machine.transfer_ends(model.OUTCOMES[len(chunk) % len(model.OUTCOMES)], True, None)
            machine.consistent()
            machine.no_internal_errors()

    atheris.Setup(sys.argv, fuzz_lines if target == "lines" else fuzz_session)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
