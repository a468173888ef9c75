"""Service settings, read from the environment by one pydantic-settings class."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.models.spec import QueueName

LogFormat = Literal["json", "text"]


class Settings(BaseSettings):
    """Every tunable of the API and the workers; environment names are the field names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for jobs, records and the Celery broker: redis://, rediss:// (TLS), or "
        "sentinel://host:port;sentinel://host:port... for Redis Sentinel (with REDIS_SENTINEL_MASTER).",
    )
    redis_sentinel_master: str = Field(
        "mymaster", description="With REDIS_URL=sentinel://...: the name the sentinels know the primary by."
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, description="With REDIS_URL=sentinel://...: the sentinels' own password, where they have one."
    )
    redis_connect_timeout_seconds: float = Field(2.0, gt=0, description="Redis connect timeout.")
    redis_socket_timeout_seconds: float = Field(2.0, gt=0, description="Redis command timeout.")
    redis_retry_seconds: float = Field(
        300.0, gt=0, description="How long a worker retries Redis, with backoff, before giving up on a write."
    )
    redis_allow_eviction: bool = Field(
        False,
        description="Let workers start on a Redis whose maxmemory-policy evicts keys (jobs, API keys "
        "and queued tasks among them); by default they refuse it.",
    )
    key_prefix: str = Field(
        "kj", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Prefix of every Redis key we own."
    )
    datasets_dir: Path | None = Field(
        None, description="Folder of MNIST-style IDX files; without it Keras downloads them."
    )
    artifacts_url: str | None = Field(
        None,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file:///.+)$",
        description="The artifact store (models, checkpoints, uploaded datasets): `s3://bucket/prefix` "
        "for any S3-compatible store (endpoint, region and credentials from the AWS_* variables), or "
        "`file:///path`; without it, the folder ARTIFACTS_DIR.",
    )
    artifacts_dir: Path = Field(
        Path("artifacts"),
        description="The artifact store's folder when ARTIFACTS_URL is unset: every API and worker "
        "process must see the same one (shared storage, across hosts).",
    )
    artifacts_check_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a starting worker tries an artifact store it cannot use before it refuses "
        "to start.",
    )
    cache_dir: Path = Field(
        Path("artifacts-cache"),
        description="Where a worker keeps checked copies of what it reads from an object store.",
    )
    cache_max_bytes: int = Field(
        10 * 1_073_741_824, ge=0, description="The most a worker's cache keeps (its recent copies aside)."
    )
    model_download: Literal["stream", "redirect"] = Field(
        "stream",
        description="How `GET /v1/jobs/{id}/model` answers: the model streamed through the API, or a "
        "redirect to a presigned URL of the object store (ARTIFACTS_URL s3://... only).",
    )
    model_url_seconds: int = Field(
        300, ge=1, le=604_800, description="How long a presigned model URL stays valid."
    )
    default_queue: QueueName = Field("cpu", description="Queue of a spec that names none.")
    max_model_parameters: int = Field(
        20_000_000, gt=0, description="Largest model (trainable parameters) a spec may ask for."
    )
    max_runtime_seconds_limit: int = Field(
        86_400, gt=0, description="Largest resources.max_runtime_seconds a spec may ask for."
    )
    cancel_check_seconds: float = Field(
        0.5, gt=0, description="How often a training job looks for a cancel request."
    )
    worker_heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker reports itself alive.")
    lease_seconds: float = Field(
        30.0, gt=0, le=60, description="A running attempt's lease; it is renewed every third of it."
    )
    dispatch_deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a queued job's message may go untaken by a worker before it is sent "
        "again, so that a job whose message was lost is never stranded.",
    )
    dispatcher_lease_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="The dispatcher's lease: when the worker process that dispatches is lost, another "
        "one takes over within this long.",
    )
    tenant_weights: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="Each tenant's share of the turns among jobs of one priority, as JSON "
        '(`{"research": 2}` gives research two turns for every other tenant\'s one); 1 when absent.',
    )
    gpu_memory_mb: int | None = Field(
        None,
        ge=1,
        description="A worker's share of its GPU's memory (MiB), which its Keras backend is held to and "
        "which the jobs it takes may ask for; `kjobs worker --slots-per-gpu` sets it. Unset: the "
        "whole GPU.",
    )
    preemption: bool = Field(
        True,
        description="Whether a waiting job of a higher priority stops a running preemptible job of a "
        "lower one at its next epoch end, when no slot of its queue is free.",
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="Attempts a job gets when its workers are lost, before it fails."
    )
    cancel_grace_seconds: float = Field(
        30.0, gt=0, description="How long a cancelled job may take to stop before its worker is terminated."
    )
    retention_seconds: int = Field(
        30 * 24 * 3600, gt=0, description="How long a finished job, its records and its files are kept."
    )
    auth_enabled: bool = Field(
        True,
        description="Require an API key on every route but /healthz, and the operator token on /metrics "
        "and /readyz; off only for local use.",
    )
    operator_token: SecretStr | None = Field(
        None,
        min_length=32,
        description="The bearer token of the operator routes, /metrics and /readyz (Prometheus, probes); "
        "without it they refuse every request while AUTH_ENABLED is true. At least 32 characters.",
    )
    max_active_jobs_per_tenant: int = Field(
        20, ge=1, description="Queued plus running jobs a tenant may have; more is a 429."
    )
    rate_limit_requests: int = Field(600, ge=1, description="Requests one API key may make per window.")
    rate_limit_window_seconds: int = Field(60, ge=1, description="The rate limit's window.")
    auth_failure_limit: int = Field(
        100,
        ge=1,
        description="Requests whose API key does not check out that one client address may make per "
        "failure window; past it, its requests are 429s.",
    )
    auth_failure_window_seconds: int = Field(300, ge=1, description="The window of AUTH_FAILURE_LIMIT.")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; more is a 413.")
    max_upload_bytes: int = Field(
        200 * 1_048_576, ge=1024, description="Largest dataset upload (`POST /v1/datasets`); more is a 413."
    )
    max_expanded_bytes: int = Field(
        1_073_741_824, ge=1024, description="Most bytes an uploaded archive may expand to."
    )
    max_datasets_per_tenant: int = Field(100, ge=1, description="Most uploaded datasets one tenant may hold.")
    max_dataset_bytes_per_tenant: int = Field(
        10 * 1_073_741_824, ge=1024, description="Most bytes one tenant's stored datasets may take."
    )
    max_epochs: int = Field(1000, ge=1, le=1000, description="Most epochs a spec may ask for.")
    max_batch_size: int = Field(65536, ge=1, le=65536, description="Largest batch size a spec may ask for.")
    idempotency_seconds: int = Field(86_400, ge=1, description="How long an Idempotency-Key is remembered.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; none by default."
    )
    long_poll_max_seconds: float = Field(
        60.0, ge=0, le=60, description="Longest a metrics long poll (`wait`) holds a request open."
    )
    max_streams_per_key: int = Field(
        20,
        ge=1,
        description="Event streams and long polls one API key may hold open at once; more is a 429.",
    )
    metrics_page_limit: int = Field(1000, gt=0, description="Most epoch records one metrics request returns.")
    log_format: LogFormat = Field(
        "json", description="`json`: one JSON object per line, with the job on lines about a job; or `text`."
    )
    log_level: str = Field(
        "INFO", pattern="(?i)^(debug|info|warning|error)$", description="Least level logged."
    )
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback, private, link-local and other non-public addresses; "
        "for local or trusted networks only.",
    )
    webhook_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Wall-clock limit of one webhook attempt: connecting, sending, the answer's status "
        "and the first bytes of its body, however slowly the receiver sends them.",
    )
    webhook_threads: int = Field(
        4, ge=1, le=64, description="Webhook delivery threads in each worker process."
    )
    webhook_threads_per_tenant: int = Field(
        2,
        ge=1,
        le=64,
        description="Most of a worker process's delivery threads that one tenant's deliveries may hold "
        "at once, so that a slow receiver leaves the others to other tenants.",
    )
    webhook_max_attempts: int = Field(
        6, ge=1, le=20, description="Attempts per webhook delivery before it fails."
    )
    webhook_retry_seconds: float = Field(
        5.0, gt=0, description="Wait before a webhook's second attempt; it doubles after each failure."
    )
    webhook_retry_max_seconds: float = Field(
        300.0, gt=0, description="Longest wait between two attempts of a webhook delivery."
    )
    webhook_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="How often each worker looks for due webhook deliveries."
    )

    @field_validator("operator_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # Compose passes `OPERATOR_TOKEN: ${OPERATOR_TOKEN:-}`: an empty value means none was set.
        return None if value == "" else value

    @property
    def broker_visibility_timeout(self) -> int:
        """Seconds before Redis redelivers an unacknowledged task: above the longest run."""
        return self.max_runtime_seconds_limit + 3600


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests call ``get_settings.cache_clear()``."""
    return Settings()
