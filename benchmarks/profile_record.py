"""Profile the hot path and the flush: ``python -m benchmarks.profile_record [N]``.

cProfile of N ``record()`` calls (flusher parked), then of one ``flush()`` of a full ring
into a memory store (where masking and JSON encoding happen). cProfile's own overhead per
call is larger than ``record()`` itself: read the split between functions, not the totals.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys

from .hot_path import _ours_loop, make_collector
from .workload import stream


def profile(n: int = 200_000, top: int = 12) -> str:
    """cProfile report of *n* record() calls and one flush, as text."""
    collector = make_collector()
    inputs = stream(n, 20)
    out = io.StringIO()
    prof = cProfile.Profile()
    prof.enable()
    _ours_loop(collector.record, inputs)
    prof.disable()
    out.write(f"== record() x {n}\n")
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    prof = cProfile.Profile()
    prof.enable()
    collector.flush(timeout=10)
    prof.disable()
    out.write("== flush() of the buffer above (ring of max_events events)\n")
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    collector.close(timeout=2)
    return out.getvalue()


if __name__ == "__main__":
    print(profile(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
