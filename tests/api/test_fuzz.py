"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis), with
every check it has.

It runs against an API of its own key prefix, whose queues no worker consumes, so the jobs it
submits wait harmlessly. It is authenticated as the document says (a tenant's key for /v1, the
operator token for /metrics and /readyz; see schemathesis.toml beside this file), and any
finding fails: a server error, an undocumented status, content type, header or body, a request
the document calls valid refused or one it calls invalid accepted, a route that ignores its
credentials, a 405 without every method in its Allow header, an object still there after its
delete.
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

CONFIG = Path(__file__).with_name("schemathesis.toml")


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


def test_the_api_survives_fuzzing_of_every_operation(
    fuzzed: tuple[str, str], settings_env: Settings, tmp_path: Path
) -> None:
    url, key = fuzzed
    assert settings_env.operator_token is not None
    credentials = {
        "KJOBS_FUZZ_KEY": key,
        "KJOBS_FUZZ_OPERATOR_TOKEN": settings_env.operator_token.get_secret_value(),
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--generation-deterministic",
        "--request-timeout",
        "10",
    ]
    env = {**os.environ, **credentials}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout[-6000:]
    generated = re.search(r"(\d+) generated, \1 passed", result.stdout)
    assert generated, result.stdout[-3000:]
    assert int(generated.group(1)) >= 1000, "enough requests to matter"
    selected = re.search(r"Selected: (\d+)/\1", result.stdout)
    assert selected, "every operation is selected"
    assert f"Tested: {selected.group(1)}" in result.stdout, "and tested"
