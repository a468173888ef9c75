"""The whole Redis key schema, under one prefix.

Only the stores issue Redis commands, each on the keys of its own concern: ``JobStore``,
``AttemptStore``, the creation script and ``JobFeed`` (``shared.jobs``), ``StudyStore``,
``DatasetStore``, ``KeyStore``, ``DeliveryClaims``, ``WebhookSecrets`` and the outbox
(``shared.webhooks``), ``WorkerRegistry`` and ``Telemetry`` (``shared.ops``), the scheduler's
``waiting`` and ``Dispatcher`` (``shared.scheduling``), and
``shared.queue`` (the broker's keys, for Celery and for queue depths).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Key names under one prefix, so several deployments (or test runs) can share a Redis."""

    prefix: str = "kj"

    def job(self, job_id: str) -> str:
        """Hash: the job's fields, each JSON-encoded."""
        return f"{self.prefix}:job:{job_id}"

    def transitions(self, job_id: str) -> str:
        """List: the job's status changes, oldest first, as JSON."""
        return f"{self.prefix}:job:{job_id}:transitions"

    def epochs(self, job_id: str) -> str:
        """List: epoch records as JSON; index i holds epoch i + 1."""
        return f"{self.prefix}:job:{job_id}:epochs"

    def job_events(self, job_id: str) -> str:
        """Pub/sub channel: a message each time the job records an epoch or changes status."""
        return f"{self.prefix}:job:{job_id}:events"

    def jobs_index(self, tenant: str) -> str:
        """Sorted set (all scores 0): a tenant's job ids, which sort by submission time."""
        return f"{self.prefix}:tenant:{tenant}:jobs"

    def status_index(self, tenant: str, status: str) -> str:
        """Sorted set like ``jobs_index``, of the jobs now in ``status``."""
        return f"{self.prefix}:tenant:{tenant}:status:{status}"

    def tag_index(self, tenant: str, key: str, value: str) -> str:
        """Sorted set like ``jobs_index``, of the jobs tagged ``key=value``."""
        return f"{self.prefix}:tenant:{tenant}:tag:{key}={value}"

    def leases(self) -> str:
        """Sorted set: ids of running jobs, scored by when their attempt's lease expires (epoch ms)."""
        return f"{self.prefix}:leases"

    def waiting(self, queue: str, priority: str, tenant: str) -> str:
        """Sorted set: a tenant's jobs of one queue and priority that wait for a slot, scored by
        when they were created (epoch ms): the order the scheduler releases them in."""
        return f"{self.prefix}:sched:{queue}:{priority}:waiting:{tenant}"

    def turns(self, queue: str, priority: str) -> str:
        """Sorted set: the tenants with jobs waiting on a queue at a priority, scored by their pass
        (``shared.scheduling``): the lowest goes next."""
        return f"{self.prefix}:sched:{queue}:{priority}:turns"

    def turn_clock(self, queue: str, priority: str) -> str:
        """String: the pass of the last tenant served on a queue at a priority, where a tenant that
        starts waiting begins."""
        return f"{self.prefix}:sched:{queue}:{priority}:clock"

    def released(self, queue: str) -> str:
        """Sorted set: the jobs released to a queue's workers and not ended or requeued since (sent
        and waiting for a worker, or running), scored by when they were released (epoch ms)."""
        return f"{self.prefix}:sched:{queue}:released"

    def released_at(self, queue: str, priority: str) -> str:
        """Sorted set: the jobs of ``released`` of one priority, which preemption looks among."""
        return f"{self.prefix}:sched:{queue}:{priority}:released"

    def needs(self, queue: str) -> str:
        """Hash: the GPU memory (MiB) each queued or running job of a queue that asks for some
        needs (``resources.gpu_memory_mb``)."""
        return f"{self.prefix}:sched:{queue}:needs"

    def bound(self, queue: str) -> str:
        """Hash: the worker each released job that needs GPU memory was sent to, by job id."""
        return f"{self.prefix}:sched:{queue}:bound"

    def dispatch_wake(self) -> str:
        """List: a nudge to the dispatcher that a job waits or a slot came free."""
        return f"{self.prefix}:sched:wake"

    def dispatcher(self) -> str:
        """String: the id of the process that dispatches now, expiring with its lease."""
        return f"{self.prefix}:sched:dispatcher"

    def endings(self) -> str:
        """Sorted set: ids of ended jobs whose follow-ups are due, scored by when (epoch ms)."""
        return f"{self.prefix}:endings"

    def finished(self) -> str:
        """Sorted set: ids of finished jobs, scored by when they finished (epoch ms)."""
        return f"{self.prefix}:finished"

    def study(self, study_id: str) -> str:
        """String: a study's record as JSON."""
        return f"{self.prefix}:study:{study_id}"

    def study_pending(self, study_id: str) -> str:
        """List: ids of a study's jobs not yet sent to a queue (its parallelism cap holds them)."""
        return f"{self.prefix}:study:{study_id}:pending"

    def study_lock(self, study_id: str) -> str:
        """String: the lock a process holds while it asks a search's next trials."""
        return f"{self.prefix}:study:{study_id}:lock"

    def studies_waiting(self) -> str:
        """Sorted set: ids of studies with held jobs, scored by when a reaper next makes sure they
        go on (epoch ms): the safety net under the endings that let them go on."""
        return f"{self.prefix}:studies:waiting"

    def studies_finished(self) -> str:
        """Sorted set: ids of studies whose every job has ended, scored by when the last one did
        (epoch ms); a study is deleted the retention time after that."""
        return f"{self.prefix}:studies:finished"

    def studies_index(self, tenant: str) -> str:
        """Sorted set (all scores 0): a tenant's study ids, which sort by creation time."""
        return f"{self.prefix}:tenant:{tenant}:studies"

    def dataset(self, dataset_id: str) -> str:
        """String: an uploaded dataset's description as JSON (its arrays are a file)."""
        return f"{self.prefix}:dataset:{dataset_id}"

    def datasets_used(self) -> str:
        """Sorted set: ids of uploaded datasets scored by when they were last used (uploaded, or
        named by a submitted job; epoch ms); one unused for the retention time is deleted."""
        return f"{self.prefix}:datasets:used"

    def datasets_index(self, tenant: str) -> str:
        """Sorted set (all scores 0): a tenant's uploaded dataset ids, by upload time."""
        return f"{self.prefix}:tenant:{tenant}:datasets"

    def api_key(self, key_id: str) -> str:
        """Hash: one API key's tenant, name, secret hash, and creation and revocation times."""
        return f"{self.prefix}:apikey:{key_id}"

    def api_keys(self) -> str:
        """Set: the ids of every API key."""
        return f"{self.prefix}:apikeys"

    def rate(self, key_id: str, window: int) -> str:
        """Counter: requests of one API key in one rate-limit window."""
        return f"{self.prefix}:rate:{key_id}:{window}"

    def open_streams(self, key_id: str) -> str:
        """Sorted set: the event streams and long polls one API key holds open, scored by when
        each one's slot expires unless renewed (epoch ms)."""
        return f"{self.prefix}:streams:{key_id}"

    def auth_failures(self, client: str) -> str:
        """Counter: requests from one client address whose key did not check out, in the current
        failure window (it lives as long as the window)."""
        return f"{self.prefix}:authfail:{client}"

    def idempotency(self, tenant: str, key: str) -> str:
        """String: the job an Idempotency-Key created, with the hash of its request body."""
        return f"{self.prefix}:tenant:{tenant}:idempotency:{key}"

    def webhook_deliveries(self, job_id: str) -> str:
        """Hash: the job's webhook deliveries, by delivery id, each with its attempts, as JSON."""
        return f"{self.prefix}:job:{job_id}:webhooks"

    def webhook_queue(self, job_id: str) -> str:
        """List: ids of the job's deliveries not yet settled, in the order of their events."""
        return f"{self.prefix}:job:{job_id}:webhooks:queue"

    def webhook_counts(self, job_id: str) -> str:
        """Hash: the job's delivery counters (created, delivered, failed, dropped)."""
        return f"{self.prefix}:job:{job_id}:webhooks:counts"

    def webhooks_due(self, tenant: str) -> str:
        """Sorted set: ids of a tenant's jobs with deliveries to send, scored by when the next is due
        (epoch ms)."""
        return f"{self.prefix}:tenant:{tenant}:webhooks:due"

    def webhook_tenants(self) -> str:
        """Sorted set: tenants with deliveries to send, scored by when each next gets a turn (epoch
        ms): when its most overdue job is due, or, once it has had a turn, the time of that turn."""
        return f"{self.prefix}:webhooks:tenants"

    def legacy_webhooks_due(self) -> str:
        """Sorted set: every tenant's due jobs in one set, as versions before per-tenant due sets
        kept them; the deliverers move what they find there into ``webhooks_due``."""
        return f"{self.prefix}:webhooks:due"

    def webhooks_claimed(self) -> str:
        """Sorted set: ids of jobs a worker is delivering for, scored by when its claim expires (epoch ms)."""
        return f"{self.prefix}:webhooks:claimed"

    def webhook_secret(self, tenant: str) -> str:
        """String: the tenant's webhook signing secret and its creation time, as JSON."""
        return f"{self.prefix}:tenant:{tenant}:webhook-secret"

    def artifacts_handshake(self) -> str:
        """String: the token of the probe object the last API process to start left in the
        artifact store, which workers check they see (``shared.storage.probe``)."""
        return f"{self.prefix}:artifacts:handshake"

    def broker_prefix(self) -> str:
        """Prefix of Celery's own keys (queues, unacknowledged messages) on the broker."""
        return f"{self.prefix}:celery:"

    def telemetry(self) -> str:
        """Hash: the service-wide counters of ``shared.ops.telemetry`` (jobs by status, totals, epochs)."""
        return f"{self.prefix}:telemetry"

    def workers(self) -> str:
        """Sorted set: worker names scored by when their last heartbeat expires (epoch ms)."""
        return f"{self.prefix}:workers"

    def worker(self, name: str) -> str:
        """String: a worker's latest heartbeat as JSON, expiring with it."""
        return f"{self.prefix}:worker:{name}"
