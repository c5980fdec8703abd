"""Aggregate a ``py-spy record -f raw`` profile by frame: where a server spends its CPU.

``py-spy record -p PID -f raw -t -o prof.txt`` writes one line per distinct stack, frames joined
by ``;`` from the thread down to the leaf, then the sample count. This prints, per thread group
(the event loop's thread vs the executor's threads), the top frames by *self* samples (the leaf)
and by *inclusive* samples (anywhere in the stack, counted once per stack), as percentages of
all samples, so that a hotspot can be quoted with its share.

    python bench/pyspy_top.py prof.txt --top 25
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_THREAD = re.compile(r"^(?:process \d+:)?.*?thread \(0x[0-9a-f]+\)$|^\d+$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    """(frames from root to leaf, samples) per line of a raw py-spy profile."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        out.append((stack.split(";"), int(count)))
    return out


def _short(frame: str) -> str:
    # "handle (ftpd/server/control.py:123)" -> "handle (server/control.py:123)"
    return re.sub(r"\((?:.*/)?(site-packages/|lib/python3\.\d+/)?", "(", frame, count=1)


def thread_group(frames: list[str]) -> str:
    """'main' for the event loop's thread, 'threads' for the others (executors)."""
    text = ";".join(frames[:4])
    if "_worker" in text or "threading.py" in text or "concurrent" in text:
        return "threads"
    return "main"


def top(stacks: list[tuple[list[str], int]], n: int, by_function: bool) -> str:
    """The report: per thread group, self and inclusive tops."""
    total = sum(c for _, c in stacks) or 1
    groups: dict[str, list[tuple[list[str], int]]] = {}
    for frames, count in stacks:
        body = [f for f in frames if not _THREAD.match(f)]
        if by_function:
            body = [re.sub(r":\d+\)$", ")", f) for f in body]
        groups.setdefault(thread_group(frames), []).append((body, count))
    lines = [f"{total} samples"]
    for name, items in sorted(groups.items()):
        g_total = sum(c for _, c in items)
        lines.append(f"\n== {name}: {g_total} samples ({100 * g_total / total:.1f}%)")
        self_c: Counter[str] = Counter()
        incl_c: Counter[str] = Counter()
        for body, count in items:
            if body:
                self_c[_short(body[-1])] += count
            for f in set(body):
                incl_c[_short(f)] += count
        lines.append("-- self (leaf) --")
        for f, c in self_c.most_common(n):
            lines.append(f"{100 * c / total:6.1f}%  {f}")
        lines.append("-- inclusive --")
        for f, c in incl_c.most_common(n):
            lines.append(f"{100 * c / total:6.1f}%  {f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the top frames of a raw profile."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--function", action="store_true", help="merge lines of the same function")
    a = p.parse_args(argv)
    print(top(parse(a.profile), a.top, a.function))


if __name__ == "__main__":
    main()
