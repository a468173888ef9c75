"""Quotas and rate limits, on an API started with small ones."""

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared.settings import Settings
from tests.conftest import new_api_key, running_api
from tests.helpers import tiny_spec, wait_for

IDLE = tiny_spec(resources={"queue": "gpu"})  # no test worker consumes the gpu queue
LIMITS = {"MAX_ACTIVE_JOBS_PER_TENANT": "2", "RATE_LIMIT_REQUESTS": "6", "RATE_LIMIT_WINDOW_SECONDS": "2"}


@pytest.fixture(scope="module")
def limited_url(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_api({**os.environ, **LIMITS}, tmp_path_factory.mktemp("logs") / "limited-api.log") as url:
        yield url


@pytest.fixture
def tenant_client(limited_url: str, settings_env: Settings) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {new_api_key(settings_env, f'limited-{uuid.uuid4().hex[:8]}')}"}
    with httpx.Client(base_url=limited_url, headers=headers, timeout=10) as client:
        yield client


def next_window(seconds: int = 2) -> None:
    """Sleep into the start of the next rate-limit window."""
    time.sleep(seconds - time.time() % seconds + 0.05)


def test_the_active_job_quota_answers_429_and_recovers(tenant_client: httpx.Client) -> None:
    next_window()
    first, second = (tenant_client.post("/v1/jobs", json=IDLE).json()["id"] for _ in range(2))
    refused = tenant_client.post("/v1/jobs", json=IDLE)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "the limit is 2" in refused.json()["detail"]
    next_window()
    assert tenant_client.post(f"/v1/jobs/{first}/cancel").json()["status"] == "cancelled"
    assert tenant_client.post("/v1/jobs", json=IDLE).status_code == 202
    assert second


def test_the_rate_limit_answers_429_and_recovers(tenant_client: httpx.Client) -> None:
    next_window()
    codes = [tenant_client.get("/v1/presets").status_code for _ in range(8)]
    assert codes[:6] == [200] * 6
    assert codes[6:] == [429, 429]
    refused = tenant_client.get("/v1/presets")
    assert 0 < int(refused.headers["retry-after"]) <= 2
    wait_for(lambda: tenant_client.get("/v1/presets").status_code == 200, timeout=5, interval=0.25)


def test_limits_are_per_key(tenant_client: httpx.Client, limited_url: str, settings_env: Settings) -> None:
    next_window()
    for _ in range(7):
        tenant_client.get("/v1/presets")
    other = {"Authorization": f"Bearer {new_api_key(settings_env, 'limited-other')}"}
    assert httpx.get(f"{limited_url}/v1/presets", headers=other).status_code == 200


def test_concurrent_studies_keep_the_quota_all_or_nothing(limited_url: str, settings_env: Settings) -> None:
    tenant = f"studies-{uuid.uuid4().hex[:8]}"
    # A key per request, so that the per-key rate limit stays out of the way of the quota.
    keys = [new_api_key(settings_env, tenant) for _ in range(12)]
    body = {"base": IDLE, "variants": [{"name": "a", "overrides": {}}, {"name": "b", "overrides": {}}]}

    def create(key: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{limited_url}/v1/studies", json=body, headers=headers, timeout=30).status_code

    next_window()
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(create, keys))
    assert sorted(codes) == [202] + [429] * 11, "two variants each, against a quota of two"
    with httpx.Client(base_url=limited_url, headers={"Authorization": f"Bearer {keys[0]}"}) as client:
        jobs = client.get("/v1/jobs", params={"limit": 100}).json()["items"]
    assert len(jobs) == 2, "a refused study stores none of its jobs"
