"""How the service's Redis meets its contract (no eviction, persistence, a password, TLS across
a network), as ``/readyz`` reports it; ``shared.ops.redis_contract`` reads and judges it."""

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]
Auth = Literal["acl_user", "password", "none"]


class RedisFinding(BaseModel):
    """One way the service's Redis falls short of the contract."""

    severity: Severity = Field(
        description="`error`: Redis may drop jobs (workers refuse to start); `warning`: it should be fixed."
    )
    setting: str = Field(
        description="A Redis setting (`maxmemory-policy`, `appendonly`, `appendfsync`) or a property of "
        "`REDIS_URL` (`auth`, `tls`)."
    )
    message: str


class RedisContract(BaseModel):
    """What could be read of the service's Redis, and where it falls short of the contract."""

    ok: bool = Field(description="No finding is an error.")
    maxmemory_policy: str | None = Field(description="`null` where `CONFIG GET` is refused.")
    appendonly: bool | None = Field(description="`null` where `CONFIG GET` is refused.")
    appendfsync: str | None = Field(description="`null` where `CONFIG GET` is refused.")
    auth: Auth = Field(description="What `REDIS_URL` authenticates with.")
    tls: bool = Field(description="Whether `REDIS_URL` is `rediss://`.")
    findings: list[RedisFinding]

    @property
    def errors(self) -> list[RedisFinding]:
        """The findings that are errors."""
        return [finding for finding in self.findings if finding.severity == "error"]
