"""``python -m bench [NAME ...] [--runs N] [--quick]``: run benchmarks, print a table of medians."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from .harness import BenchError
from .suite import BENCHES, Options, Row, stamp

QUICK = Options(runs=1, pairs=1, messages=2_000, peer_messages=1_000, duration=3.0, teams=100, idle=3.0)


def table(rows: list[Row]) -> str:
    lines = [f"{'bench':<11} {'figure':<38} {'median':>12} {'unit':<7} {'target':<9} met"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        value = f"{r.value:,.0f}" if abs(r.value) >= 100 else f"{r.value:.2f}"
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(f"{r.bench:<11} {r.figure:<38} {value:>12} {r.unit:<7} {r.target:<9} {met}")
    return "\n".join(lines)


def parse(argv: list[str]) -> tuple[list[str], Options]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one run: a smoke check")
    for field in dataclasses.fields(Options):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(field.default), default=None, help=f"default {field.default}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    base = QUICK if args.quick else Options()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Options)}
    overrides = {name: value for name, value in given.items() if value is not None}
    return args.names or list(BENCHES), dataclasses.replace(base, **overrides)


async def run(names: list[str], opts: Options) -> int:
    rows: list[Row] = []
    failed = False
    for name in names:
        print(f"[{stamp()}] {name} ...", file=sys.stderr, flush=True)
        try:
            rows += await BENCHES[name](opts)
        except BenchError as exc:
            failed = True
            print(f"[{stamp()}] {name} FAILED: {exc}", file=sys.stderr, flush=True)
    print(f"gridbot benchmarks, medians of {opts.runs} run(s), throughput of {opts.pairs} pairs, {stamp()}")
    print(table(rows))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    names, opts = parse(sys.argv[1:] if argv is None else argv)
    return asyncio.run(run(names, opts))


if __name__ == "__main__":
    sys.exit(main())
