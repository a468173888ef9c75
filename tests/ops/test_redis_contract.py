"""The Redis contract, read from real redis-servers of the tests' own (never the session's, whose
settings they would change), and reported by ``/readyz``."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from shared.ops.redis_contract import check_contract, connection_facts, judge
from shared.ops.refreshed import Refreshed
from shared.redis.connection import connect
from shared.settings import Settings
from tests.conftest import operator_headers, running_api
from tests.redis_server import RedisServer

CONTRACT_KEPT = {"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "everysec"}


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server with the options of the test's ``server`` parameter (a RedisServer's fields)."""
    redis = RedisServer(tmp_path, **getattr(request, "param", {}))
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def client_of(url: str) -> Redis:
    """A client made as the service makes every one."""
    return connect(Settings(redis_url=url))


@pytest.mark.parametrize("server", [{"append_only": True, "password": "s3cret-for-tests"}], indirect=True)
def test_a_redis_that_keeps_the_contract_has_no_finding(server: RedisServer) -> None:
    with client_of(server.url) as redis:
        contract = check_contract(redis)
    assert contract.ok is True
    assert (contract.maxmemory_policy, contract.appendonly, contract.appendfsync) == (
        "noeviction",
        True,
        "everysec",
    )
    assert (contract.auth, contract.tls) == ("password", False)
    assert contract.findings == []


@pytest.mark.parametrize(
    "server", [{"options": ("--maxmemory-policy", "allkeys-lru", "--maxmemory", "64mb")}], indirect=True
)
def test_an_evicting_redis_is_an_error_and_aof_off_and_no_password_are_warnings(
    server: RedisServer,
) -> None:
    with client_of(server.url) as redis:
        contract = check_contract(redis)
    assert contract.ok is False
    assert (contract.maxmemory_policy, contract.appendonly, contract.auth) == ("allkeys-lru", False, "none")
    found = {finding.setting: finding for finding in contract.findings}
    assert {setting: finding.severity for setting, finding in found.items()} == {
        "maxmemory-policy": "error",
        "appendonly": "warning",
        "auth": "warning",
    }
    assert "allkeys-lru" in found["maxmemory-policy"].message
    assert "REDIS_ALLOW_EVICTION" in found["maxmemory-policy"].message
    assert contract.errors == [found["maxmemory-policy"]]


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-ttl", "allkeys-random"])
def test_every_policy_but_noeviction_is_an_error(policy: str) -> None:
    contract = judge({**CONTRACT_KEPT, "maxmemory-policy": policy}, "password", False, None)
    assert [(finding.severity, finding.setting) for finding in contract.findings] == [
        ("error", "maxmemory-policy")
    ]


def test_an_aof_left_to_the_os_to_fsync_is_a_warning() -> None:
    contract = judge({**CONTRACT_KEPT, "appendfsync": "no"}, "password", False, None)
    assert contract.ok is True
    assert [(finding.severity, finding.setting) for finding in contract.findings] == [
        ("warning", "appendfsync")
    ]


@pytest.mark.parametrize("server", [{"append_only": True}], indirect=True)
def test_where_config_is_refused_the_settings_are_unknown_not_a_failure(server: RedisServer) -> None:
    # An ACL user without CONFIG, as a managed Redis gives one.
    with Redis.from_url(server.url) as admin:
        admin.acl_setuser(
            "kjobs",
            enabled=True,
            passwords=["+pw-kjobs"],
            keys="*",
            channels="*",
            commands=["+@all", "-config"],
        )
    with client_of(f"redis://kjobs:pw-kjobs@127.0.0.1:{server.port}/0") as redis:
        contract = check_contract(redis)
    assert (contract.maxmemory_policy, contract.appendonly, contract.appendfsync) == (None, None, None)
    assert (contract.ok, contract.auth) == (True, "acl_user")
    assert [(finding.severity, finding.setting) for finding in contract.findings] == [
        ("warning", "maxmemory-policy"),
        ("warning", "appendonly"),
    ]
    assert "CONFIG GET is refused" in contract.findings[0].message


@pytest.mark.parametrize(
    ("url", "facts"),
    [
        ("redis://127.0.0.1:6379/0", ("none", False, None)),
        ("redis://localhost:6379/0", ("none", False, None)),
        ("redis://[::1]:6379/0", ("none", False, None)),
        ("redis://:pw@redis:6379/0", ("password", False, "redis")),
        ("redis://default:pw@10.0.0.7:6379/0", ("password", False, "10.0.0.7")),
        ("rediss://kjobs:pw@cache.example.com:6380/0", ("acl_user", True, "cache.example.com")),
        ("unix:///run/redis.sock?db=0", ("none", False, None)),
    ],
)
def test_password_tls_and_host_come_from_the_url(url: str, facts: tuple[str, bool, str | None]) -> None:
    assert connection_facts(Redis.from_url(url)) == facts  # no connection is made


def test_plain_tcp_to_another_host_is_a_warning_and_tls_or_loopback_is_not() -> None:
    plain = judge(CONTRACT_KEPT, "password", False, "redis")
    assert [(finding.severity, finding.setting) for finding in plain.findings] == [("warning", "tls")]
    assert "rediss://" in plain.findings[0].message
    assert judge(CONTRACT_KEPT, "acl_user", True, "cache.example.com").findings == []
    assert judge(CONTRACT_KEPT, "password", False, None).findings == []


@pytest.mark.parametrize("server", [{"append_only": True}], indirect=True)
def test_the_api_s_reading_is_kept_for_a_while_then_read_again(server: RedisServer) -> None:
    now = [0.0]
    with client_of(server.url) as redis:
        watch = Refreshed(lambda: check_contract(redis), 60, clock=lambda: now[0])
        assert watch.current().maxmemory_policy == "noeviction"
        redis.config_set("maxmemory-policy", "allkeys-lru")
        now[0] = 59.0
        assert watch.current().maxmemory_policy == "noeviction"
        now[0] = 60.0
        assert (watch.current().maxmemory_policy, watch.current().ok) == ("allkeys-lru", False)


def readiness(url: str, settings: Settings) -> httpx.Response:
    return httpx.get(f"{url}/readyz", headers=operator_headers(settings), timeout=10)


def test_readyz_reports_the_contract_of_the_suite_s_redis(
    operator: httpx.Client, settings_env: Settings
) -> None:
    ready = operator.get("/readyz").json()
    contract = ready["redis_contract"]
    with connect(settings_env) as redis:
        config = {name: redis.config_get(name)[name] for name in CONTRACT_KEPT}
    assert contract["maxmemory_policy"] == config["maxmemory-policy"]
    assert contract["appendonly"] is (config["appendonly"] == "yes")
    assert contract["appendfsync"] == config["appendfsync"]
    assert contract["ok"] is (config["maxmemory-policy"] == "noeviction")


@pytest.mark.parametrize("server", [{"options": ("--maxmemory-policy", "allkeys-lfu")}], indirect=True)
def test_readyz_stays_ready_on_an_evicting_redis_and_says_it_is_not_ok(
    server: RedisServer, settings_env: Settings, tmp_path: Path
) -> None:
    env = {**os.environ, "REDIS_URL": server.url, "KEY_PREFIX": f"contract{uuid.uuid4().hex[:6]}"}
    with running_api(env, tmp_path / "api.log") as url:
        answer = readiness(url, settings_env)
    assert answer.status_code == 200
    ready = answer.json()
    assert (ready["ready"], ready["redis"]) == (True, "ok")
    contract = ready["redis_contract"]
    assert (contract["ok"], contract["maxmemory_policy"]) == (False, "allkeys-lfu")
    assert [(f["severity"], f["setting"]) for f in contract["findings"]] == [
        ("error", "maxmemory-policy"),
        ("warning", "appendonly"),
        ("warning", "auth"),
    ]
    logged = (tmp_path / "api.log").read_text()
    assert "maxmemory-policy is allkeys-lfu" in logged, "the API logs it when it starts"


@pytest.mark.parametrize("server", [{"append_only": True}], indirect=True)
def test_readyz_answers_503_without_a_contract_while_redis_is_down(
    server: RedisServer, settings_env: Settings, tmp_path: Path
) -> None:
    env = {**os.environ, "REDIS_URL": server.url, "KEY_PREFIX": f"contract{uuid.uuid4().hex[:6]}"}
    with running_api(env, tmp_path / "api.log") as url:
        assert readiness(url, settings_env).json()["redis_contract"]["ok"] is True
        server.stop()
        down = readiness(url, settings_env)
        assert down.status_code == 503
        assert (down.json()["redis"], down.json()["redis_contract"]) == ("unreachable", None)
        server.start()
        again = readiness(url, settings_env)
    assert again.status_code == 200
    assert [finding["setting"] for finding in again.json()["redis_contract"]["findings"]] == ["auth"]
