"""Each tenant's webhook signing secret: created on first use, rotated on request."""

import json
import secrets

from redis import Redis

from shared.models.jobs import utc_now
from shared.models.webhooks import WebhookSecret
from shared.redis.keys import RedisKeys

SECRET_PREFIX = "whsec_"


class WebhookSecrets:
    """The tenants' secrets. Deliveries are signed with the secret current when each is sent."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis, self.keys = redis, keys

    def get(self, tenant: str) -> WebhookSecret:
        """The tenant's secret, made now if it has none (of two racing callers, one makes it)."""
        key = self.keys.webhook_secret(tenant)
        self.redis.set(key, _new_secret().model_dump_json(), nx=True)
        raw = self.redis.get(key)
        return WebhookSecret.model_validate(json.loads(str(raw)))

    def rotate(self, tenant: str) -> WebhookSecret:
        """Replace the tenant's secret; deliveries from now on, retries included, use the new one."""
        fresh = _new_secret()
        self.redis.set(self.keys.webhook_secret(tenant), fresh.model_dump_json())
        return fresh


def _new_secret() -> WebhookSecret:
    return WebhookSecret(secret=SECRET_PREFIX + secrets.token_urlsafe(32), created_at=utc_now())
