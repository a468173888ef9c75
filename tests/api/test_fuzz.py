"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

It runs against an API of its own key prefix, whose queues no worker consumes, so the jobs it
submits wait harmlessly; it is authenticated, and checks every answer: no server error, a
documented status code, content type and body.
"""

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.auth.keys import KeyStore
from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.conftest import delete_prefixed, running_api

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


@pytest.fixture(scope="module")
def fuzzed(settings_env: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    prefix = f"fuzz{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "KEY_PREFIX": prefix,
        "MAX_ACTIVE_JOBS_PER_TENANT": "1000000",
        "RATE_LIMIT_REQUESTS": "1000000",
        # The jobs it submits never run: a long poll on one would hold its whole time.
        "LONG_POLL_MAX_SECONDS": "1",
    }
    redis = connect(settings_env)
    _, key = KeyStore(redis, RedisKeys(prefix)).create("fuzzer")
    try:
        with running_api(env, tmp_path_factory.mktemp("logs") / "fuzzed-api.log") as url:
            yield url, key
    finally:
        delete_prefixed(redis, prefix)


def test_the_api_survives_fuzzing_of_every_operation(fuzzed: tuple[str, str], tmp_path: Path) -> None:
    url, key = fuzzed
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        "25",
        "--generation-deterministic",
        "--request-timeout",
        "10",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:]
    generated = re.search(r"(\d+) generated, \1 passed", result.stdout)
    assert generated, result.stdout[-3000:]
    assert int(generated.group(1)) >= 300, "enough requests to matter"
    selected = re.search(r"Selected: (\d+)/\1", result.stdout)
    assert selected, "every operation is selected"
    assert f"Tested: {selected.group(1)}" in result.stdout, "and tested"
