"""``GET /ops``: the operations page, one HTML page with its script and styles shipped in the
package (no build step, nothing fetched from elsewhere). The page holds no data: its script
reads the admin API with the token the operator gives it, kept in the tab's session storage."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

#: The page's files, by the name it asks for, and their media types.
FILES = {
    "index.html": "text/html; charset=utf-8",
    "ops.js": "text/javascript; charset=utf-8",
    "ops.css": "text/css; charset=utf-8",
}
#: Only this origin's own script and styles, and calls to its own API; never framed.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self';"
    " connect-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_CONTENT = {name: (resources.files("serve") / "ops" / name).read_bytes() for name in FILES}


def _file(name: str) -> Response:
    return Response(_CONTENT[name], media_type=FILES[name], headers=HEADERS)


@router.get("/ops")
async def page() -> Response:
    return _file("index.html")


@router.get("/ops/ops.js")
async def script() -> Response:
    return _file("ops.js")


@router.get("/ops/ops.css")
async def styles() -> Response:
    return _file("ops.css")
