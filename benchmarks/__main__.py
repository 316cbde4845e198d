"""``python -m benchmarks``: run the rows, print a Markdown table, write the raw JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ._common import DEFAULT_REDIS_URL, Context, Result, machine_info

ROWS: dict[int, tuple[str, str]] = {
    1: ("hot path", "benchmarks.hot_path:run"),
    2: ("scrape vs worker churn", "benchmarks.scrape:run_churn"),
    3: ("scrape vs series", "benchmarks.scrape:run_series"),
    4: ("flush", "benchmarks.flush:run"),
    5: ("end to end", "benchmarks.e2e:run"),
    6: ("memory", "benchmarks.memory:run"),
    7: ("scrape storm on a slow Redis", "benchmarks.storm:run"),
    8: ("5xx storm with Sentry", "benchmarks.sentry_storm:run"),
    9: ("per-request count", "benchmarks.request_count:run"),
    10: ("in-process error path", "benchmarks.in_process:run_error"),
    11: ("in-process 2xx", "benchmarks.in_process:run_ok"),
    12: ("end to end 2xx with request counting", "benchmarks.e2e:run_ok"),
}

#: Rows run only when asked for by name (``--rows fleet``, or ``--rows all``): the fleet row
#: starts its own Redis servers (a Cluster too) and takes minutes.
NAMED_ROWS: dict[str, tuple[str, str]] = {
    "fleet": ("fleet capacity", "benchmarks.fleet:run"),
}


def _runner(spec: str) -> Callable[[Context], list[Result]]:
    import importlib

    module, _, name = spec.partition(":")
    fn: Callable[[Context], list[Result]] = getattr(importlib.import_module(module), name)
    return fn


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("records/s", "req/s"):
        return f"{value:,.0f} {unit}"
    if unit == "bytes":
        return f"{value:,.0f} B"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    if abs(value) >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.3g} {unit}"


def markdown(results: list[Result]) -> str:
    """The results as a Markdown table: row, what, us, peer, ratio, aim, met."""
    lines = [
        "| # | what | us | peer | ratio (us/peer) | aim | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        peer = _fmt(r.peer, r.unit)
        if r.peer_name:
            peer = f"{peer} ({r.peer_name})"
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.3g}"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        what = r.what + (f" — {r.note}" if r.note else "")
        lines.append(
            f"| {r.row} | {what} | {_fmt(r.us, r.unit)} | {peer} | {ratio} | {r.aim} | {met} |"
        )
    return "\n".join(lines)


def parse_rows(text: str | None) -> list[Any]:
    """``"1,2,5"`` -> [1, 2, 5]; ``"fleet,4"`` -> [4, "fleet"]; None -> the numbered rows.

    ``"all"`` is every numbered row and every named one.
    """
    if not text:
        return list(ROWS)
    parts = [part for part in text.replace(" ", "").split(",") if part]
    if "all" in parts:
        return [*ROWS, *NAMED_ROWS]
    names = [p for p in NAMED_ROWS if p in parts]
    try:
        rows = sorted({int(p) for p in parts if p not in NAMED_ROWS})
    except ValueError:
        raise SystemExit(
            f"rows are numbers {list(ROWS)} or names {list(NAMED_ROWS)}, got {text!r}"
        ) from None
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows are {list(ROWS)} and {list(NAMED_ROWS)}")
    return [*rows, *names]


def run(
    ctx: Context, rows: list[Any], load: dict[Any, Any] | None = None
) -> tuple[list[Result], dict[Any, str]]:
    """Run *rows*; a row that fails is reported (and the others still run).

    *load* gets the machine's load average before and after each row: the figures of a
    shared machine are only as good as the quiet it had.
    """
    results: list[Result] = []
    failures: dict[Any, str] = {}
    for row in rows:
        title, spec = ROWS[row] if row in ROWS else NAMED_ROWS[row]
        start = time.monotonic()
        before = os.getloadavg()
        try:
            results.extend(_runner(spec)(ctx))
        except Exception as exc:
            failures[row] = f"{type(exc).__name__}: {exc}"
            ctx.log(f"row {row} ({title}) FAILED: {failures[row]}")
        if load is not None:
            load[row] = {"before": before, "after": os.getloadavg()}
        ctx.log(f"row {row} ({title}) took {time.monotonic() - start:.1f}s")
    return results, failures


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller loops")
    parser.add_argument("--tiny", action="store_true", help="smoke sizes (figures meaningless)")
    parser.add_argument(
        "--rows",
        help="comma-separated row numbers or names (default: rows 1-12; 'fleet' starts "
        "its own Redis servers and runs only when asked for, 'all' runs every row)",
    )
    parser.add_argument(
        "--json", default="benchmarks/results.json", help="where to write the raw figures"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help=f"Redis to use (default $BENCH_REDIS_URL or {DEFAULT_REDIS_URL}); only keys of "
        "this run's random namespaces are written and deleted",
    )
    parser.add_argument("--repeats", type=int, default=7, help="rounds per figure (median)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--prototypes",
        action="store_true",
        help="rows 10 and 11 with benchmarks/prototypes.py applied (changes the library "
        "does not have: what they would save)",
    )
    args = parser.parse_args(argv)
    if args.prototypes:
        os.environ["FECB_PROTOTYPES"] = "1"

    scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    ctx = Context(
        scale=scale, redis_url=args.redis_url, repeats=args.repeats, verbose=not args.quiet
    )
    rows = parse_rows(args.rows)
    started = time.time()
    load: dict[Any, Any] = {}
    try:
        results, failures = run(ctx, rows, load)
    finally:
        deleted = ctx.cleanup()
        ctx.log(f"deleted {deleted} keys of namespaces fecb-{ctx.run_id}-*")
    table = markdown(results)
    print(table)
    for row, why in failures.items():
        print(f"\nrow {row} failed: {why}")
    report: dict[str, Any] = {
        "machine": machine_info(),
        "scale": scale,
        "repeats": args.repeats,
        "rows": rows,
        "started": started,
        "seconds": time.time() - started,
        "redis_url": args.redis_url,
        "results": [r.as_dict() for r in results],
        "failures": failures,
        "loadavg": load,
        "table": table,
    }
    if args.json:
        folder = os.path.dirname(args.json)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
        ctx.log(f"raw figures in {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
