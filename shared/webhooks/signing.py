"""How webhook requests are signed, and how a receiver checks them.

The signature is HMAC-SHA256, keyed with the tenant's webhook secret, over the timestamp, a
dot and the raw body: ``f"{timestamp}.{body}"``. Signing the timestamp lets a receiver refuse
a captured request replayed later; the ``v1=`` scheme leaves room for another algorithm.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-KJobs-Signature"
TIMESTAMP_HEADER = "X-KJobs-Timestamp"
DELIVERY_HEADER = "X-KJobs-Delivery"
EVENT_HEADER = "X-KJobs-Event"
ATTEMPT_HEADER = "X-KJobs-Delivery-Attempt"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``v1=`` and the hex HMAC-SHA256 of ``{timestamp}.{body}``."""
    message = f"{timestamp}.".encode() + body
    return f"{SCHEME}={hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


def signed_headers(
    secret: str, body: bytes, *, delivery_id: str, event: str, attempt: int, timestamp: int
) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
        ATTEMPT_HEADER: str(attempt),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp_header: str,
    signature_header: str,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether a request was signed with ``secret`` within ``tolerance_seconds`` of ``now``."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
