"""The webhook deliverer: daemon threads in every worker process that send the outbox.

They never run on the training thread, so a slow or dead receiver cannot slow training; what
they have not sent when their process stops stays in Redis for the next deliverer. Each of
``WEBHOOK_THREADS`` senders claims due jobs with tenants taking turns (``shared.webhooks.claims``),
and no tenant holds more than ``WEBHOOK_THREADS_PER_TENANT`` of a process's senders at once: one
tenant's slow receiver, or its many events, leaves the other senders to the other tenants.

Each attempt is a POST to an address checked against the SSRF policy
(``shared.webhooks.targets``), signed with the tenant's secret as it is at that moment, and over
``WEBHOOK_TIMEOUT_SECONDS`` after it began however slowly its receiver answers
(``worker.webhook_http``).
"""

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection

from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from shared.webhooks.claims import AttemptResult, Claim, DeliveryClaims
from shared.webhooks.outbox import StoredDelivery
from shared.webhooks.secrets import WebhookSecrets
from shared.webhooks.signing import signed_headers
from shared.webhooks.targets import TargetRefused, resolve_target
from worker.webhook_http import WebhookHttp

log = logging.getLogger(__name__)
USER_AGENT = "keras-jobs-webhooks/1"
MAX_ERROR_CHARS = 300


class TenantShares:
    """How many of a process's senders each tenant holds; a claim goes to a tenant below ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: Counter[str] = Counter()
        # Claims are taken one at a time, so two senders cannot both take a tenant's last share.
        self._lock = threading.Lock()

    def claim(self, take: Callable[[Collection[str]], Claim | None]) -> Claim | None:
        """``take`` a claim, passing it the tenants to pass over, and count the claim's tenant."""
        with self._lock:
            claim = take({tenant for tenant, held in self._held.items() if held >= self.limit})
            if claim is not None:
                self._held[claim.tenant] += 1
            return claim

    def done(self, claim: Claim) -> None:
        """The claim's sender is free again."""
        with self._lock:
            self._held[claim.tenant] -= 1
            if not self._held[claim.tenant]:
                del self._held[claim.tenant]


class Deliverer:
    """``WEBHOOK_THREADS`` senders: each claims due jobs and sends their deliveries in order."""

    def __init__(self, claims: DeliveryClaims, secrets: WebhookSecrets, settings: Settings) -> None:
        self.claims, self.secrets, self.settings = claims, secrets, settings
        self.shares = TenantShares(settings.webhook_threads_per_tenant)
        # Longer than any attempt takes (its deadline, and a DNS lookup, which the deadline cannot
        # cut short), so a live sender never loses its claim mid-request.
        self.hold_seconds = 2 * settings.webhook_timeout_seconds + 30
        self._stopped = threading.Event()
        process = uuid.uuid4().hex[:16]
        self._threads = [
            threading.Thread(
                target=self._run, args=(f"{process}-{n}",), name=f"kjobs-webhooks-{n}", daemon=True
            )
            for n in range(settings.webhook_threads)
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> "Deliverer":
        """A deliverer with a Redis connection pool of its own: a prefork child, forked while these
        threads may hold a pool's lock, then never shares that pool with them."""
        redis, keys = connect(settings), RedisKeys(settings.key_prefix)
        return cls(DeliveryClaims(redis, keys), WebhookSecrets(redis, keys), settings)

    def start(self) -> None:
        """Send in the background until ``stop``."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish the POSTs in hand, then stop; what is left waits in the outbox."""
        self._stopped.set()
        until = time.monotonic() + self.hold_seconds
        for thread in self._threads:
            thread.join(timeout=max(0.0, until - time.monotonic()))
        self.claims.redis.close()

    def _run(self, sender: str) -> None:
        http = WebhookHttp()
        try:
            while not self._stopped.is_set():
                try:
                    made = self.run_once(sender, http)
                except Exception as exc:  # Redis away, say: the outbox keeps everything; try again
                    log.warning("webhook sender %s: %s: %s", sender, type(exc).__name__, exc)
                    made = 0
                if not made:
                    self._stopped.wait(self.settings.webhook_poll_seconds)
        finally:
            http.close()

    def run_once(self, sender: str, http: WebhookHttp) -> int:
        """Reclaim abandoned jobs, then send what is due as ``sender``; the number of attempts made."""
        self.claims.reclaim_expired(time.time())
        made = 0
        while not self._stopped.is_set():
            claim = self.shares.claim(
                lambda skip: self.claims.claim(time.time(), self.hold_seconds, sender, skip)
            )
            if claim is None:
                break
            try:
                made += self.send_next(claim, http)
            finally:
                self.shares.done(claim)
        return made

    def send_next(self, claim: Claim, http: WebhookHttp) -> int:
        """One attempt on the claimed job's next delivery; 0 when it had none left."""
        delivery = self.claims.begin(claim, time.time())
        if delivery is None:
            return 0
        number = delivery.attempts[-1].number
        if number > self.settings.webhook_max_attempts:  # earlier attempts were lost with their sender
            result = AttemptResult(ok=False, duration_ms=0.0, error="no attempts left", retryable=False)
        else:
            result = self.post(delivery, number, http)
        retry_at = self.retry_time(number) if result.retryable else None
        self.claims.finish(claim, delivery.id, result, None if result.ok else retry_at)
        level = logging.INFO if result.ok else logging.WARNING
        outcome = result.error or result.status_code
        log.log(level, "job %s: webhook %s attempt %d: %s", delivery.job_id, delivery.id, number, outcome)
        return 1

    def retry_time(self, number: int) -> float | None:
        """When the next attempt is due after attempt ``number`` failed; None when none is left."""
        if number >= self.settings.webhook_max_attempts:
            return None
        wait = self.settings.webhook_retry_seconds * 2.0 ** (number - 1)
        return time.time() + min(wait, self.settings.webhook_retry_max_seconds)

    def post(self, delivery: StoredDelivery, number: int, http: WebhookHttp) -> AttemptResult:
        """POST the delivery's body to its URL as attempt ``number``, by the attempt's deadline."""
        started = time.monotonic()
        try:
            target = resolve_target(delivery.url, self.settings.webhook_allow_private)
        except TargetRefused as exc:
            # An address the policy refuses stays refused; one that does not resolve may yet.
            return AttemptResult(
                ok=False,
                duration_ms=_since(started),
                error=str(exc)[:MAX_ERROR_CHARS],
                retryable=exc.transient,
            )
        body = delivery.body.encode()
        secret = self.secrets.get(delivery.tenant).secret
        headers = signed_headers(
            secret,
            body,
            delivery_id=delivery.id,
            event=delivery.event,
            attempt=number,
            timestamp=int(time.time()),
        )
        headers.update({"Host": target.host_header, "User-Agent": USER_AGENT})
        deadline = started + self.settings.webhook_timeout_seconds
        reply = http.post(target.connect_url, headers, body, target.server_name, deadline)
        if reply.ok:
            return AttemptResult(True, _since(started), reply.status)
        error = reply.error or f"HTTP {reply.status}"
        return AttemptResult(False, _since(started), reply.status, error[:MAX_ERROR_CHARS])


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
