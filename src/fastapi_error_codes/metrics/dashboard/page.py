"""The operator page: package-data HTML, read once, served with a hash-based CSP."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

from fastapi.responses import HTMLResponse

__all__ = ["SECURITY_HEADERS", "load_page", "page_response"]

#: Headers of every page response besides the Content-Security-Policy.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _csp_hashes(tag: str, html: str) -> str:
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"
        for text in found
    )


@functools.lru_cache(maxsize=1)
def load_page() -> tuple[bytes, str]:
    """The page's bytes (package data, read once) and its Content-Security-Policy."""
    static = resources.files("fastapi_error_codes.metrics.dashboard") / "static"
    html = (static / "dashboard.html").read_text(encoding="utf-8")
    # Only this page's own inline script and style may run, and it may talk only to its own
    # origin: the browser itself enforces "no CDN, no external fetch".
    csp = (
        "default-src 'none'; "
        f"script-src {_csp_hashes('script', html)}; "
        f"style-src {_csp_hashes('style', html)}; "
        "connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp


def page_response() -> HTMLResponse:
    """The page as an HTML response with its CSP and the security headers."""
    body, csp = load_page()
    return HTMLResponse(body, headers={"Content-Security-Policy": csp, **SECURITY_HEADERS})
