"""The Redis contract: what the service's Redis must be, and a check of what can be checked.

Redis is the job store as well as the broker, so it must keep what it is given and let in only
the service: no eviction (``maxmemory-policy noeviction``), an append-only file, a password or
an ACL user, and TLS (``rediss://``) where the connection crosses a network. The settings are
read with ``CONFIG GET`` where Redis allows it (a managed Redis often renames or forbids
``CONFIG``: they are then unknown, never a failure); the password and TLS are read from the
connection's own options. An evicting policy is the one error: workers refuse to start on it
unless ``REDIS_ALLOW_EVICTION`` is true (``worker.redis_gate``).
"""

import ipaddress
import logging
from collections.abc import Mapping

from redis import Redis
from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ResponseError

from shared.models.redis_contract import Auth, RedisContract, RedisFinding
from shared.ops.refreshed import Refreshed

log = logging.getLogger(__name__)

NO_EVICTION = "noeviction"
REFRESH_SECONDS = 60.0
"""How long the API trusts a reading: settings change rarely, and probes come every few seconds."""

CHECKED_SETTINGS = ("maxmemory-policy", "appendonly", "appendfsync")


def check_contract(redis: Redis) -> RedisContract:
    """Read what can be read of ``redis`` and judge it; a Redis that does not answer raises
    redis-py's ``ConnectionError`` or ``TimeoutError``."""
    config = {name: read_config(redis, name) for name in CHECKED_SETTINGS}
    return judge(config, *connection_facts(redis))


def judge(config: Mapping[str, str | None], auth: Auth, tls: bool, remote: str | None) -> RedisContract:
    """The contract of a Redis with settings ``config`` (None: unread), reached as
    ``connection_facts`` says."""
    policy, appendonly, fsync = (config.get(name) for name in CHECKED_SETTINGS)
    findings = [
        *_judge_policy(policy),
        *_judge_persistence(appendonly, fsync),
        *_judge_connection(auth, tls, remote),
    ]
    return RedisContract(
        ok=not any(finding.severity == "error" for finding in findings),
        maxmemory_policy=policy,
        appendonly=None if appendonly is None else appendonly == "yes",
        appendfsync=fsync,
        auth=auth,
        tls=tls,
        findings=findings,
    )


def read_config(redis: Redis, name: str) -> str | None:
    """A setting's value, or None where ``CONFIG GET`` is refused (renamed, or not in the ACL)."""
    try:
        values = redis.config_get(name)
    except ResponseError:  # NoPermissionError is one, and so is "unknown command"
        return None
    value = values.get(name)
    return None if value is None else str(value)


def connection_facts(redis: Redis) -> tuple[Auth, bool, str | None]:
    """How ``redis`` authenticates, whether it uses TLS, and the host it reaches when that is
    neither a loopback address nor a Unix socket (None then)."""
    pool = redis.connection_pool
    options = pool.connection_kwargs
    username, password = options.get("username"), options.get("password")
    auth: Auth = "none" if not password else "password" if username in (None, "", "default") else "acl_user"
    if issubclass(pool.connection_class, UnixDomainSocketConnection):
        return auth, False, None
    host = str(options.get("host", "localhost"))
    return auth, issubclass(pool.connection_class, SSLConnection), None if is_loopback(host) else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _judge_policy(policy: str | None) -> list[RedisFinding]:
    if policy is None:
        return [_unread("maxmemory-policy", NO_EVICTION)]
    if policy == NO_EVICTION:
        return []
    message = (
        f"maxmemory-policy is {policy}: at its maxmemory Redis deletes keys, and with them jobs, their "
        "records, API keys and queued tasks; set it to noeviction (workers refuse to start on it "
        "unless REDIS_ALLOW_EVICTION is true)"
    )
    return [RedisFinding(severity="error", setting="maxmemory-policy", message=message)]


def _judge_persistence(appendonly: str | None, fsync: str | None) -> list[RedisFinding]:
    if appendonly is None:
        return [_unread("appendonly", "yes")]
    if appendonly != "yes":
        message = (
            "appendonly is no: a Redis restart loses every write since its last snapshot, jobs, "
            "records and queued tasks included; set appendonly yes (and appendfsync everysec)"
        )
        return [RedisFinding(severity="warning", setting="appendonly", message=message)]
    if fsync == "no":
        message = (
            "appendfsync is no: the operating system decides when writes reach the disk, so a crash "
            "may lose many seconds of them; set it to everysec"
        )
        return [RedisFinding(severity="warning", setting="appendfsync", message=message)]
    return []


def _judge_connection(auth: Auth, tls: bool, remote: str | None) -> list[RedisFinding]:
    findings = []
    if auth == "none":
        message = (
            "REDIS_URL carries no password: whoever reaches this Redis reads the API keys' hashes and "
            "the webhook secrets and can forge jobs; give Redis a password (requirepass) or an ACL "
            "user and put it in REDIS_URL"
        )
        findings.append(RedisFinding(severity="warning", setting="auth", message=message))
    if remote is not None and not tls:
        message = (
            f"REDIS_URL reaches {remote} over plain TCP: where the connection crosses a network, use "
            "TLS (rediss://); a private container network needs none"
        )
        findings.append(RedisFinding(severity="warning", setting="tls", message=message))
    return findings


def _unread(setting: str, required: str) -> RedisFinding:
    message = f"{setting} could not be read (CONFIG GET is refused); it must be {required}"
    return RedisFinding(severity="warning", setting=setting, message=message)


def log_findings(contract: RedisContract, logger: logging.Logger = log) -> None:
    """One log line per finding, at its severity."""
    for finding in contract.findings:
        level = logging.ERROR if finding.severity == "error" else logging.WARNING
        logger.log(level, "Redis contract: %s", finding.message)


def contract_watch(redis: Redis, refresh_seconds: float = REFRESH_SECONDS) -> Refreshed[RedisContract]:
    """The contract of the API's Redis, read again at most every ``refresh_seconds``, so that
    ``/readyz`` reports it without a ``CONFIG GET`` on every probe."""
    return Refreshed(lambda: check_contract(redis), refresh_seconds)
