"""The webhook deliverer: a daemon thread in every worker process that sends the outbox.

It never runs on the training thread, so a slow or dead receiver cannot slow training; what it
has not sent when its process stops stays in Redis for the next deliverer. Each attempt is a
POST with a short timeout to an address checked against the SSRF policy
(``shared.webhooks.targets``), signed with the tenant's secret as it is at that moment.
"""

import logging
import threading
import time
import uuid

import httpx

from shared.redis.connection import connect
from shared.redis.keys import RedisKeys
from shared.settings import Settings
from shared.webhooks.claims import AttemptResult, Claim, DeliveryClaims
from shared.webhooks.outbox import StoredDelivery
from shared.webhooks.secrets import WebhookSecrets
from shared.webhooks.signing import signed_headers
from shared.webhooks.targets import TargetRefused, resolve_target

log = logging.getLogger(__name__)
USER_AGENT = "keras-jobs-webhooks/1"
MAX_ERROR_CHARS = 300


class Deliverer:
    """Claims due jobs and sends their deliveries in order, one POST at a time."""

    def __init__(self, claims: DeliveryClaims, secrets: WebhookSecrets, settings: Settings) -> None:
        self.claims, self.secrets, self.settings = claims, secrets, settings
        self.sender = uuid.uuid4().hex[:16]
        # Longer than any one POST can take, so a live sender never loses its claim mid-request.
        self.hold_seconds = 2 * settings.webhook_timeout_seconds + 30
        self.http = httpx.Client(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,  # a redirect could lead anywhere: it is a failed attempt
            trust_env=False,  # no proxy from the environment: the checked address is the one reached
            headers={"User-Agent": USER_AGENT},
        )
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kjobs-webhooks", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Deliverer":
        """A deliverer with a Redis connection pool of its own: a prefork child, forked while this
        thread may hold a pool's lock, then never shares that pool with it."""
        redis, keys = connect(settings), RedisKeys(settings.key_prefix)
        return cls(DeliveryClaims(redis, keys), WebhookSecrets(redis, keys), settings)

    def start(self) -> None:
        """Send in the background until ``stop``."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the POST in hand, then stop; what is left waits in the outbox."""
        self._stopped.set()
        self._thread.join(timeout=self.hold_seconds)
        self.http.close()
        self.claims.redis.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                made = self.run_once()
            except Exception as exc:  # Redis away, say: the outbox keeps everything; try again
                log.warning("webhook deliverer: %s: %s", type(exc).__name__, exc)
                made = 0
            if not made:
                self._stopped.wait(self.settings.webhook_poll_seconds)

    def run_once(self) -> int:
        """Reclaim abandoned jobs, then send what is due; the number of attempts made."""
        self.claims.reclaim_expired(time.time())
        made = 0
        while not self._stopped.is_set():
            claim = self.claims.claim(time.time(), self.hold_seconds, self.sender)
            if claim is None:
                break
            made += self.send_next(claim)
        return made

    def send_next(self, claim: Claim) -> int:
        """One attempt on the claimed job's next delivery; 0 when it had none left."""
        delivery = self.claims.begin(claim, time.time())
        if delivery is None:
            return 0
        number = delivery.attempts[-1].number
        if number > self.settings.webhook_max_attempts:  # earlier attempts were lost with their sender
            result = AttemptResult(ok=False, duration_ms=0.0, error="no attempts left", retryable=False)
        else:
            result = self.post(delivery, number)
        retry_at = self.retry_time(number) if result.retryable else None
        self.claims.finish(claim, delivery.id, result, None if result.ok else retry_at)
        level = logging.INFO if result.ok else logging.WARNING
        outcome = result.status_code or result.error
        log.log(level, "job %s: webhook %s attempt %d: %s", delivery.job_id, delivery.id, number, outcome)
        return 1

    def retry_time(self, number: int) -> float | None:
        """When the next attempt is due after attempt ``number`` failed; None when none is left."""
        if number >= self.settings.webhook_max_attempts:
            return None
        wait = self.settings.webhook_retry_seconds * 2.0 ** (number - 1)
        return time.time() + min(wait, self.settings.webhook_retry_max_seconds)

    def post(self, delivery: StoredDelivery, number: int) -> AttemptResult:
        """POST the delivery's body to its URL as attempt ``number``; what came of it."""
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
        headers["Host"] = target.host_header
        try:
            answer = self.http.post(
                target.connect_url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.server_name},
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            return AttemptResult(ok=False, duration_ms=_since(started), error=error)
        ok, code = answer.is_success, answer.status_code
        return AttemptResult(ok, _since(started), code, None if ok else f"HTTP {code}")


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
