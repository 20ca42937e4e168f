"""``python -m bench.profile FILE [--top N] [--match TEXT]``: summarise a py-spy raw profile.

Prints the functions with the most samples, inclusive (on the stack) and self (on top), as a
share of the samples that were busy (samples outside the event loop, i.e. imports, and those waiting in
``select`` are left out). Written by ``GRIDBOT_BENCH_PROFILE=DIR python -m bench ...``.
"""

from __future__ import annotations

import argparse
import collections
import sys


def _frame(entry: str) -> str:
    # "name (path/to/file.py:line)" -> "name (file.py)"
    name, _, where = entry.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def summarise(lines: list[str], top: int, match: str | None) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        n = int(count)
        if not any(f.startswith("BaseEventLoop.run_forever") for f in frames):
            continue  # start-up (imports) and shutdown: not the measured pipeline
        if frames[-1].startswith("EpollSelector.select"):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    out = [f"busy samples {busy}, idle {idle}"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        out.append(f"\n{title:>9}  function")
        rows = [(f, c) for f, c in counter.most_common() if match is None or match in f]
        for f, c in rows[:top]:
            out.append(f"{100 * c / max(busy, 1):8.1f}%  {f}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default=None, help="only functions whose name or file holds this")
    args = parser.parse_args()
    with open(args.file) as f:
        print(summarise(f.readlines(), args.top, args.match))


if __name__ == "__main__":
    sys.exit(main())
