"""The web page at ``/ui``: static HTML, CSS and JavaScript modules, no build step.

The page is public (it holds no data); every API call it makes carries the key the user
typed, so the routes it calls enforce authentication as for any other client.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"
UI_PATH = "/ui"
STATIC_PATH = f"{UI_PATH}/static"

router = APIRouter(include_in_schema=False)


@router.get(UI_PATH)
def ui_page() -> FileResponse:
    """The single page; it routes between its views with the URL's fragment."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get(f"{UI_PATH}/")
def ui_trailing_slash() -> RedirectResponse:
    """``/ui/`` is the same page."""
    return RedirectResponse(UI_PATH)


def static_files() -> StaticFiles:
    """The page's scripts, styles and icon, served from the installed package."""
    return StaticFiles(directory=STATIC_DIR)
