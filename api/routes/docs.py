"""The interactive documentation, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with every
script, style and icon served by the service itself.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, unpinned and without an
integrity hash, and are blank on a machine without internet. These load the copies in the
``fastapi-offline`` wheel, whose version ``pyproject.toml`` pins: what runs in a reader's
browser is what was installed with the service. Each page's content security policy holds the
browser to that: scripts from the service and the page's own inline script (by its hash),
requests, images and fonts from the service alone, so neither library's calls elsewhere (ReDoc's
"powered by" logo, Swagger UI's online validator badge) leave the browser.
"""

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

TITLE = "keras-jobs"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"

# Swagger UI and ReDoc style their elements inline as they render them ('unsafe-inline' for
# styles only); ReDoc's search runs in a worker made from a blob.
POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """The installed Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def static_files() -> StaticFiles:
    """The pages' scripts, styles and icon, served from the installed package."""
    return StaticFiles(directory=assets_dir())


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """``page`` with its content security policy, which lets its own inline scripts run by hash."""
    scripts = _INLINE_SCRIPT.findall(bytes(page.body).decode())
    hashes = (base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in scripts)
    page.headers["Content-Security-Policy"] = POLICY.format(scripts=" ".join(f"'sha256-{h}'" for h in hashes))
    return page


def _root(request: Request) -> str:
    # Behind a proxy that strips a prefix (uvicorn --root-path), links keep the prefix.
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the OpenAPI document."""
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{OPENAPI_PATH}",
        title=f"{TITLE} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        # No badge from the public validator, which would be sent the document's URL.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return with_policy(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the OpenAPI document, in the browser's own fonts."""
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{OPENAPI_PATH}",
        title=f"{TITLE} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        with_google_fonts=False,
    )
    return with_policy(page)
