"""``kjobs admin`` as a user runs it: subprocesses against a redis-server of this module's own,
each test under a key prefix of its own; and the key file ``kjobs up`` writes."""

import asyncio
import hashlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from cli.main import local_api_key
from shared.auth.keys import Caller, FailureLimit, KeyStore
from shared.jobs.feed import JobFeed
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from tests.helpers import free_port
from tests.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
KJOBS = Path(sys.executable).parent / "kjobs"
RUN_TIMEOUT_SECONDS = 60
WINDOW_SECONDS = 60


@pytest.fixture(scope="module")
def own_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own on a free port."""
    server = RedisServer(tmp_path_factory.mktemp("admin-redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"kjadmin{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(own_redis_url: str, prefix: str) -> dict[str, str]:
    """The environment of ``kjobs admin``: the module's Redis and the test's key prefix."""
    env = {name: value for name, value in os.environ.items() if name != "FORCE_COLOR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(REDIS_URL=own_redis_url, KEY_PREFIX=prefix, COLUMNS="200", NO_COLOR="1")
    return env


@pytest.fixture
def keys(own_redis_url: str, prefix: str) -> Iterator[KeyStore]:
    """The test's API keys, read straight from Redis."""
    with Redis.from_url(own_redis_url, decode_responses=True) as redis:
        yield KeyStore(redis, RedisKeys(prefix))


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``kjobs admin ARGS`` and return how it went."""
    assert KJOBS.is_file(), f"no kjobs console script next to {sys.executable}; pip install -e ."
    return subprocess.run(
        [str(KJOBS), "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def authenticate(keys: KeyStore, token: str) -> Caller | None:
    """The caller of ``token`` as the API checks it (its request counted)."""

    async def read() -> Caller | None:
        where = keys.redis.connection_pool.connection_kwargs
        feed = JobFeed(AsyncRedis(host=where["host"], port=where["port"], decode_responses=True), keys.keys)
        try:
            return (await feed.read_as(keys, token, WINDOW_SECONDS, "127.0.0.1", FailureLimit(100, 60)))[0]
        finally:
            await feed.redis.aclose()

    return asyncio.run(read())


def create(env: dict[str, str], tenant: str, *args: str) -> str:
    """Create a key with ``kjobs admin create-key`` and return it: its last line of output."""
    done = admin(env, "create-key", "--tenant", tenant, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_create_key_prints_a_key_that_authenticates(env: dict[str, str], keys: KeyStore) -> None:
    done = admin(env, "create-key", "--tenant", "acme", "--name", "ci")

    assert done.returncode == 0, done.stderr
    *summary, key = done.stdout.splitlines()
    caller = authenticate(keys, key)
    assert caller is not None, done.stdout
    assert caller.tenant == "acme"
    assert summary == [f"Created API key {caller.key_id} for tenant acme"]
    assert [(info.id, info.tenant, info.name) for info in keys.list()] == [(caller.key_id, "acme", "ci")]


def test_list_keys_shows_ids_and_tenants_but_no_secret(env: dict[str, str], keys: KeyStore) -> None:
    key = create(env, "acme", "--name", "nightly")
    create(env, "globex")

    done = admin(env, "list-keys")

    assert done.returncode == 0, done.stderr
    secret = key.split("_", 2)[2]
    for info in keys.list():
        row = next(line for line in done.stdout.splitlines() if info.id in line)
        assert info.tenant in row
        assert info.name in row
    assert "nightly" in done.stdout
    assert secret not in done.stdout
    assert hashlib.sha256(secret.encode()).hexdigest() not in done.stdout
    assert key not in done.stdout


def test_list_keys_without_keys(env: dict[str, str]) -> None:
    done = admin(env, "list-keys")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "No API keys.\n"


def test_revoke_key_stops_the_key_at_once(env: dict[str, str], keys: KeyStore) -> None:
    key = create(env, "acme")
    kept = create(env, "acme")
    key_id = key.split("_")[1]

    done = admin(env, "revoke-key", key_id)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Revoked API key {key_id}\n"
    assert authenticate(keys, key) is None
    assert authenticate(keys, kept) is not None
    listed = admin(env, "list-keys").stdout
    revoked_row = next(line for line in listed.splitlines() if key_id in line)
    assert revoked_row.rstrip(" │|").endswith(tuple("0123456789")), "a revocation time"


def test_revoking_an_unknown_key_exits_1(env: dict[str, str]) -> None:
    done = admin(env, "revoke-key", "0123456789ab")

    assert done.returncode == 1
    assert done.stderr == "error: no API key with id '0123456789ab'\n"
    assert done.stdout == ""


def test_a_bad_tenant_name_exits_2(env: dict[str, str], keys: KeyStore) -> None:
    done = admin(env, "create-key", "--tenant", "no spaces")

    assert done.returncode == 2
    assert done.stderr.startswith("error: tenant 'no spaces' must match ")
    assert done.stdout == ""
    assert keys.list() == []


def test_an_unreachable_redis_is_a_clear_error(env: dict[str, str]) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    for args in (["create-key", "--tenant", "acme"], ["list-keys"], ["revoke-key", "0123456789ab"]):
        done = admin({**env, "REDIS_URL": url}, *args)

        assert done.returncode == 1, args
        assert done.stderr.startswith(f"error: cannot use Redis at {url.replace('hunter2', '***')}: ")
        assert "Traceback" not in done.stderr
        assert "hunter2" not in done.stderr


def test_up_rewrites_its_key_file_owner_only(
    own_redis_url: str, prefix: str, keys: KeyStore, tmp_path: Path
) -> None:
    path = tmp_path / ".kjobs" / "api-key"
    path.parent.mkdir()
    path.write_text("an old key\n")
    path.chmod(0o644)
    settings = Settings(key_prefix=prefix, auth_enabled=True)

    first = local_api_key(settings, own_redis_url, path)
    second = local_api_key(settings, own_redis_url, path)

    assert first is not None
    assert second is not None
    assert second != first
    assert path.read_text() == f"{second}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for key in (first, second):
        caller = authenticate(keys, key)
        assert caller is not None
        assert caller.tenant == "local"
    assert {info.name for info in keys.list()} == {"kjobs up"}


def test_up_issues_no_key_when_auth_is_off(
    own_redis_url: str, prefix: str, keys: KeyStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "api-key"
    path.write_text("a stale key\n")

    key = local_api_key(Settings(key_prefix=prefix, auth_enabled=False), own_redis_url, path)

    assert key is None
    assert not path.exists()
    assert keys.list() == []
    assert "authentication is off (AUTH_ENABLED=false)" in capsys.readouterr().out
