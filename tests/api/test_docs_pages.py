"""``/docs`` and ``/redoc`` load every script, style and icon from the service itself: no CDN, so
they work on a machine without internet and run only what was installed with the service."""

import asyncio
import re

import httpx
import pytest

from api.main import create_api

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def assets_of(page: str) -> list[str]:
    """The URLs a page's tags load."""
    return ASSET.findall(page)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            "/docs",
            ["/docs/assets/swagger-ui.css", "/docs/assets/favicon.png", "/docs/assets/swagger-ui-bundle.js"],
        ),
        ("/redoc", ["/docs/assets/favicon.png", "/docs/assets/redoc.standalone.js"]),
    ],
)
def test_the_documentation_loads_only_the_service_s_own_files(
    api_url: str, page: str, expected: list[str]
) -> None:
    answer = httpx.get(f"{api_url}{page}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert assets_of(answer.text) == expected
    assert "http://" not in answer.text
    assert "https://" not in answer.text
    assert "'/openapi.json'" in answer.text or '"/openapi.json"' in answer.text
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self';" in policy
    assert "http" not in policy, "no other origin may serve the page anything"
    for path in expected:
        asset = httpx.get(f"{api_url}{path}")
        assert asset.status_code == 200, path
        assert len(asset.content) > 1000, path


def test_the_scripts_are_the_libraries_the_pages_call(api_url: str) -> None:
    swagger = httpx.get(f"{api_url}/docs/assets/swagger-ui-bundle.js")
    assert swagger.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "SwaggerUIBundle" in swagger.text
    redoc = httpx.get(f"{api_url}/docs/assets/redoc.standalone.js")
    assert "Redoc" in redoc.text
    assert httpx.get(f"{api_url}/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")


def test_the_pages_keep_a_proxy_s_prefix() -> None:
    # Behind a proxy that strips /kjobs (uvicorn --root-path /kjobs), every link keeps the prefix.
    # In process: the pages need no Redis.
    async def links() -> list[list[str]]:
        transport = httpx.ASGITransport(app=create_api(), root_path="/kjobs")
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return [assets_of((await http.get(page)).text) for page in ("/docs", "/redoc")]

    for page_links in asyncio.run(links()):
        assert page_links
        assert all(link.startswith("/kjobs/docs/assets/") for link in page_links), page_links
