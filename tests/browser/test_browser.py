"""The dashboard page in a real browser: Debian's chromium driven by playwright, real uvicorn.

Chromium (apt) and playwright (pip, into this interpreter's environment) are installed when
missing; ``playwright install`` is never run: the browser is Debian's ``/usr/bin/chromium``.
A failed install skips the test locally and fails it in CI (``CI=true``, as ``.ci/run`` sets).
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest

from tests._servers import free_port, in_ci, repo_root, wait_for_port
from tests.metrics.dashboard.app import LIVE, NAMES, STATUS, expected_totals

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGE = "/api/metrics/"
TOKEN = "browser-test-token-0123456789"
ARTIFACTS = repo_root() / "artifacts"


def _unavailable(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        _unavailable(f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=900, env=env
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"installing Debian's chromium failed: {exc!r}")
    if not Path(CHROMIUM).exists():
        _unavailable(f"apt-get installed chromium but {CHROMIUM} is missing")


def _ensure_playwright() -> Any:
    try:
        from playwright import sync_api
    except ImportError:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "playwright"],
                check=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            _unavailable(f"pip install playwright failed: {exc!r}")
        importlib.invalidate_caches()
        try:
            from playwright import sync_api
        except ImportError as exc:
            _unavailable(f"playwright is still not importable after installing it: {exc!r}")
    return sync_api


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    """playwright's sync API, with Debian's chromium present (installed here when missing)."""
    _ensure_chromium()
    return _ensure_playwright()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The example app under real uvicorn on a free loopback port; stopped afterwards."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.metrics.dashboard.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=repo_root(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for_port(port, timeout=30)
            except TimeoutError:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"uvicorn did not start:\n{output}") from None
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def seeded(server: str) -> dict[int, int]:
    """Make the live errors through real requests; wait until the fleet totals show them."""
    expected = expected_totals()
    with httpx.Client(base_url=server, timeout=5) as client:
        for code, (method, route, times) in LIVE.items():
            for i in range(times):
                path = route.replace("{user_id}", str(i)).replace("{order_id}", str(i))
                assert client.request(method, path).status_code == STATUS[code]
        deadline = time.monotonic() + 15
        while True:
            rows = client.get(PAGE + "top-errors").json()
            if {r["error_code"]: r["count"] for r in rows} == expected:
                assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
                # /recent is {"events", "count", "timestamp"}: the page renders its events.
                recent = client.get(PAGE + "recent").json()
                live = sum(times for _method, _route, times in LIVE.values())
                assert recent["count"] == len(recent["events"]) == live
                return expected
            assert time.monotonic() < deadline, f"totals never reached {expected}: {rows}"
            time.sleep(0.1)


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_dashboard_in_chromium(playwright_api: Any, server: str, seeded: dict[int, int]) -> None:
    requests: list[tuple[str, str | None]] = []
    problems: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(15_000)
            context.on(
                "request", lambda r: requests.append((r.url, r.headers.get("authorization")))
            )
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server + PAGE)
            page.wait_for_selector("body[data-state=ok]")
            _check_chart(page, seeded)
            _check_tables_and_cards(page, seeded)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            _check_csv_download(page)
            _check_token_field(page, requests)
            _check_refreshes_itself(page, server, seeded)

            phone = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            )
            phone.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
            mobile = phone.new_page()
            mobile.on("pageerror", lambda e: problems.append(str(e)))
            mobile.goto(server + PAGE)
            mobile.wait_for_selector("body[data-state=ok]", timeout=15_000)
            assert mobile.locator("#chart-svg circle.point").count() > 0
            overflow = mobile.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the page scrolls sideways on a phone by {overflow}px"
            mobile.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
        finally:
            browser.close()

    # CSP violations and script errors end up on the console.
    assert problems == []
    # Nothing left loopback: every network request went to the test server.
    assert requests
    for url, _auth in requests:
        parts = urlsplit(url)
        if parts.scheme in ("data", "about", "blob"):
            continue
        assert parts.scheme == "http", url
        assert parts.hostname == "127.0.0.1", url
        assert url.startswith(server + "/"), url
        assert TOKEN not in url


def _check_chart(page: Any, expected: dict[int, int]) -> None:
    points = page.eval_on_selector_all(
        "#chart-svg circle.point",
        """els => els.map(e => ({code: e.dataset.code, count: Number(e.dataset.count),
            cy: Number(e.getAttribute('cy')), w: e.getBoundingClientRect().width}))""",
    )
    by_code: dict[str, list[int]] = {}
    for p in points:
        assert p["w"] > 0, "a point is not drawn"
        by_code.setdefault(p["code"], []).append(p["count"])
    # Every seeded code has its line and points; all of it is in the one-hour window.
    assert {code: sum(counts) for code, counts in by_code.items()} == {
        str(code): total for code, total in expected.items()
    }
    for code in expected:
        assert page.locator(f'#chart-svg g.series[data-code="{code}"] polyline').count() == 1
    lines = page.eval_on_selector_all(
        "#chart-svg polyline", "els => els.map(e => e.getAttribute('points').split(' ').length)"
    )
    assert set(lines) == {60}  # one vertex per minute of the hour
    # Higher counts are drawn higher (smaller y).
    ordered = sorted(points, key=lambda p: p["count"])
    for low, high in itertools.pairwise(ordered):
        if high["count"] > low["count"]:
            assert high["cy"] < low["cy"]
    legend = page.eval_on_selector_all("#legend li", "els => els.map(e => e.dataset.code)")
    assert legend == [str(c) for c, _ in sorted(expected.items(), key=lambda kv: -kv[1])]


def _check_tables_and_cards(page: Any, expected: dict[int, int]) -> None:
    rows = page.eval_on_selector_all(
        "#top tbody tr", "trs => trs.map(tr => Array.from(tr.cells, c => c.textContent))"
    )
    assert [(int(r[0]), r[1], _number(r[2])) for r in rows] == [
        (code, NAMES[code], total)
        for code, total in sorted(expected.items(), key=lambda kv: -kv[1])
    ]
    total = sum(expected.values())
    four = sum(n for code, n in expected.items() if STATUS[code] < 500)
    assert _number(page.text_content("#c-total") or "") == total
    assert _number(page.text_content("#c-window") or "") == total
    assert _number(page.text_content("#c-4xx") or "") == four
    assert _number(page.text_content("#c-5xx") or "") == total - four
    assert _number(page.text_content("#c-workers") or "") >= 1
    assert _number(page.text_content("#c-dropped") or "") == 0
    statuses = page.eval_on_selector_all(
        "#statuses tbody tr", "trs => trs.map(tr => Array.from(tr.cells, c => c.textContent))"
    )
    assert {int(s): _number(n) for s, _cls, n in statuses} == {
        STATUS[code]: n for code, n in expected.items()
    }
    recent = page.eval_on_selector_all(
        "#recent tbody tr", "trs => trs.map(tr => Array.from(tr.cells, c => c.textContent))"
    )
    seen = Counter((r[1], r[2], int(r[3]), r[4], int(r[5])) for r in recent)
    assert seen == {
        (method, route, code, NAMES[code], STATUS[code]): times
        for code, (method, route, times) in LIVE.items()
    }
    # Each recent error shows its request's id (the middleware made one: 32 hex digits).
    assert all(re.fullmatch(r"[0-9a-f]{32}", r[7]) for r in recent), recent
    # Routes: the live requests (the history batch counted errors, not requests), all failing.
    routes = page.eval_on_selector_all(
        "#routes tbody tr", "trs => trs.map(tr => Array.from(tr.cells, c => c.textContent))"
    )
    assert sorted((r[0], r[1], _number(r[2]), _number(r[3]), r[5]) for r in routes) == sorted(
        (route, method, times, times, "100.0 %") for method, route, times in LIVE.values()
    )
    assert page.text_content("#c-ratio") == "100.0 %"


def _check_csv_download(page: Any) -> None:
    """The Routes CSV button saves the routes of the window (fetched, then a blob: download)."""
    with page.expect_download() as info:
        page.click('button[data-csv="routes"]')
    download = info.value
    assert download.suggested_filename == "errors-routes.csv"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "route,method,requests,errors,errors_4xx,errors_5xx,error_ratio"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(
        route for _method, route, _times in LIVE.values()
    )


def _loads(page: Any) -> int:
    return int(page.get_attribute("body", "data-loads") or 0)


def _check_token_field(page: Any, requests: list[tuple[str, str | None]]) -> None:
    page.select_option("#refresh", "0")  # no timer firing in between
    api = [a for u, a in requests if "/api/metrics/" in u and not u.endswith(PAGE)]
    assert api and all(a is None for a in api), "no Authorization header before a token is set"
    before, mark = _loads(page), len(requests)
    page.click("summary")
    page.fill("#token", TOKEN)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector(f'body[data-loads="{before + 1}"]')
    sent = [a for u, a in requests[mark:] if "/api/metrics/" in u]
    assert len(sent) == 5
    assert set(sent) == {f"Bearer {TOKEN}"}
    assert page.evaluate("Object.values(sessionStorage)") == [TOKEN]
    assert page.input_value("#token") == ""
    before, mark = _loads(page), len(requests)
    page.click("#token-clear")
    page.wait_for_selector(f'body[data-loads="{before + 1}"]')
    assert [a for u, a in requests[mark:] if "/api/metrics/" in u] == [None] * 5
    assert page.evaluate("sessionStorage.length") == 0


def _check_refreshes_itself(page: Any, server: str, expected: dict[int, int]) -> None:
    page.select_option("#refresh", "5")
    with httpx.Client(base_url=server, timeout=5) as client:
        assert client.post("/checkout").status_code == 503
    total = sum(expected.values()) + 1
    # Selectors, not wait_for_function: the page's CSP forbids the eval that would need.
    page.wait_for_selector(f'#c-total:text-is("{total}")', timeout=15_000)
