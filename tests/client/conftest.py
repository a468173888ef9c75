"""Fixtures of the client tests: an API key of a tenant of their own, and a client holding it."""

import uuid
from collections.abc import Iterator

import pytest

from client import KJobsClient, RetryPolicy
from shared.settings import Settings
from tests.conftest import new_api_key

# Retries wait only a moment here: the tests count tries, not seconds.
QUICK_RETRIES = RetryPolicy(attempts=4, backoff_seconds=0.01, max_backoff_seconds=0.05)


@pytest.fixture
def api_key(settings_env: Settings) -> str:
    """A key of a fresh tenant, so that lists hold only this test's jobs."""
    return new_api_key(settings_env, f"client-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def kjobs(api_url: str, api_key: str) -> Iterator[KJobsClient]:
    """A sync client of the running API."""
    with KJobsClient(api_url, api_key, retry=QUICK_RETRIES) as client:
        yield client
