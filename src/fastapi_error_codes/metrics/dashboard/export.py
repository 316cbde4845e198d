"""CSV exports of the dashboard: the same numbers as the JSON endpoints, one row per line.

Cells are written by :mod:`csv` (RFC 4180 quoting, CRLF line ends). Text that a spreadsheet
would take for a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab, CR or LF, or their
full-width forms) gets a leading apostrophe: routes, error names and request paths may carry
an attacker's text. Numbers are written as numbers (``-1``, the overflow series' code, is not
a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi.responses import Response

from ..models import OVERFLOW_CODE, FleetView
from .queries import series_windows
from .schemas import RoutesResponse, TimeseriesResponse

__all__ = [
    "CSV_MEDIA_TYPE",
    "FORMULA_PREFIXES",
    "ROUTES_HEADER",
    "SUMMARY_HEADER",
    "TIMESERIES_HEADER",
    "csv_cell",
    "csv_response",
    "render_csv",
    "routes_rows",
    "summary_rows",
    "timeseries_rows",
]

#: The media type of every CSV answer (with ``charset=utf-8`` added by the response).
CSV_MEDIA_TYPE = "text/csv"
#: First characters that make a spreadsheet evaluate a cell (OWASP's CSV injection list, plus
#: LF and the full-width forms some spreadsheets also accept).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")

Cell = str | int | float | None


def csv_cell(value: Cell) -> str | int | float:
    """*value* as a CSV cell: None empty, numbers as they are, formula-like text defused."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def render_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A header row and *rows*, every cell through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(c) for c in row] for row in rows)
    return out.getvalue()


def csv_response(text: str, filename: str) -> Response:
    """*text* as a ``text/csv; charset=utf-8`` download named *filename*."""
    return Response(
        content=text.encode("utf-8"),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


#: Header of ``summary.csv``: one row per error series (code, status).
SUMMARY_HEADER = ("error_code", "error_name", "status_code", "total", "last_5m", "last_1h")


def summary_rows(view: FleetView, *, now: float, width: int) -> list[tuple[Cell, ...]]:
    """One row per error series: all-time total and the last 5 minutes and hour."""
    rows: list[tuple[Cell, ...]] = []
    for code, status, total, last_5m, last_1h in series_windows(view, now=now, width=width):
        name = "other" if code == OVERFLOW_CODE else view.names.get(code, "")
        rows.append((code, name, status, total, last_5m, last_1h))
    return rows


#: Header of ``timeseries.csv``: one row per step and line of the chart.
TIMESERIES_HEADER = ("start", "start_epoch", "series", "error_code", "error_name", "count")


def timeseries_rows(body: TimeseriesResponse) -> list[tuple[Cell, ...]]:
    """One row per step and line (``series`` is the code as text, or ``other``), oldest first."""
    rows: list[tuple[Cell, ...]] = []
    for i, (iso, epoch) in enumerate(zip(body.timestamps, body.timestamps_epoch, strict=True)):
        for line in body.series:
            rows.append((iso, epoch, line.key, line.error_code, line.error_name, line.counts[i]))
    return rows


#: Header of ``routes.csv``: one row per (route, method).
ROUTES_HEADER = (
    "route",
    "method",
    "requests",
    "errors",
    "errors_4xx",
    "errors_5xx",
    "error_ratio",
)


def routes_rows(body: RoutesResponse) -> list[tuple[Cell, ...]]:
    """One row per (route, method) of *body*, in its order (most errors first)."""
    return [
        (r.route, r.method, r.requests, r.errors, r.errors_4xx, r.errors_5xx, r.error_ratio)
        for r in body.routes
    ]
