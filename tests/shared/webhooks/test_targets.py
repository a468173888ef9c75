"""Webhook signatures, URL forms and the SSRF policy, without a network."""

import hashlib
import hmac
import ipaddress
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import SpecInvalid
from shared.jobs.submission import resolve_submission
from shared.models.presets import ARTICLE_PRESETS
from shared.models.spec import JobSpec, JobSubmission
from shared.models.studies import StudyRequest
from shared.settings import Settings
from shared.studies.expansion import expand
from shared.webhooks.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    verify,
)
from shared.webhooks.targets import TargetRefused, is_public, resolve_target, submission_refusal

SECRET = "whsec_test"
BODY = b'{"event":"state"}'


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1_700_000_000, BODY) == f"v1={expected}"


def test_headers_carry_signature_timestamp_delivery_and_event() -> None:
    headers = signed_headers(
        SECRET, BODY, delivery_id="d1", event="state", attempt=2, timestamp=1_700_000_000
    )
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers[DELIVERY_HEADER] == "d1"
    assert headers["X-KJobs-Event"] == "state"
    assert headers["X-KJobs-Delivery-Attempt"] == "2"
    assert verify(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=1_700_000_010)


@pytest.mark.parametrize(
    ("secret", "body", "timestamp", "now"),
    [
        ("whsec_other", BODY, "1700000000", 1_700_000_000),  # another tenant's secret
        (SECRET, BODY + b" ", "1700000000", 1_700_000_000),  # a changed body
        (SECRET, BODY, "1700000001", 1_700_000_000),  # a changed timestamp
        (SECRET, BODY, "1700000000", 1_700_000_301),  # too old: a replay
        (SECRET, BODY, "soon", 1_700_000_000),
    ],
)
def test_verification_refuses_anything_changed_or_stale(
    secret: str, body: bytes, timestamp: str, now: int
) -> None:
    good = signature(SECRET, 1_700_000_000, BODY)
    assert not verify(secret, body, timestamp, good, now=now)


def notify_spec(url: str, **notify: Any) -> JobSpec:
    return JobSpec.model_validate({"notify": {"url": url, **notify}})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("https://token@example.com/hook", "credentials"),
        ("https:///hook", "needs a host"),
        ("https://example.com:99999/hook", "port"),
        ("https://example.com/a hook", "spaces"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        notify_spec(url)
    (error,) = caught.value.errors()
    assert error["loc"] == ("notify", "url")
    assert message in error["msg"]


def test_events_default_to_state_and_are_checked() -> None:
    assert notify_spec("https://example.com/hook").notify.events == ["state"]  # type: ignore[union-attr]
    both = notify_spec("https://example.com/hook", events=["epoch", "state"])
    assert both.notify.events == ["epoch", "state"]  # type: ignore[union-attr]
    twice = notify_spec("https://example.com/hook", events=["epoch", "epoch"])
    assert twice.notify.events == ["epoch"]  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as caught:
        notify_spec("https://example.com/hook", events=["finished"])
    assert caught.value.errors()[0]["loc"][:2] == ("notify", "events")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "224.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::1",  # 6to4 of it
        "::a9fe:a9fe",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert submission_refusal(f"http://{host}:8080/hook", allow_private=False) is not None
    assert submission_refusal(f"http://{host}:8080/hook", allow_private=True) is None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert submission_refusal(f"https://{host}/hook", allow_private=False) is None


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "0xa9.0xfe.0xa9.0xfe"])
def test_numeric_forms_of_an_ipv4_address_are_refused_at_submission(host: str) -> None:
    refusal = submission_refusal(f"http://{host}/hook", allow_private=False)
    assert refusal is not None
    assert "numeric form" in refusal


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "api.localhost"])
def test_localhost_names_are_refused_at_submission(host: str) -> None:
    assert submission_refusal(f"http://{host}/hook", allow_private=False) is not None


def test_names_are_checked_after_resolution_and_pinned() -> None:
    # "localhost" resolves without a network; with private targets allowed it is pinned to loopback.
    with pytest.raises(TargetRefused, match="not a public address") as caught:
        resolve_target("http://localhost:9/hook", allow_private=False)
    assert not caught.value.transient
    target = resolve_target("http://localhost:9/hook?x=1#frag", allow_private=True)
    assert not is_public(
        ipaddress.ip_address(target.connect_url.split("//")[1].rsplit(":", 1)[0].strip("[]"))
    )
    assert target.connect_url.endswith(":9/hook?x=1")
    assert (target.host_header, target.server_name) == ("localhost:9", "localhost")


def test_a_name_that_does_not_resolve_is_a_transient_refusal() -> None:
    with pytest.raises(TargetRefused) as caught:
        resolve_target("https://no-such-host.invalid/hook", allow_private=False)
    assert caught.value.transient


def resolve(body: dict[str, Any], allow_private: bool) -> JobSpec:
    settings = Settings(webhook_allow_private=allow_private)  # type: ignore[call-arg]
    return resolve_submission(JobSubmission.model_validate(body), settings).spec


def test_submission_refuses_a_private_literal_address_unless_allowed() -> None:
    body = {"notify": {"url": "http://169.254.169.254/latest/meta-data"}}
    with pytest.raises(SpecInvalid) as caught:
        resolve(body, allow_private=False)
    assert [e.field for e in caught.value.errors] == ["notify.url"]
    assert "not a public address" in caught.value.errors[0].message
    assert resolve(body, allow_private=True).notify is not None


def test_a_studys_base_notify_reaches_every_variant_and_is_checked() -> None:
    settings = Settings(webhook_allow_private=False)  # type: ignore[call-arg]
    request = StudyRequest.model_validate(
        {
            "base": {"notify": {"url": "https://hooks.example.com/k"}},
            "grid": {"regularization.l2": [0.0, 1e-4]},
        }
    )
    assert [job.spec.notify.url for _, job in expand(request, settings)] == [
        "https://hooks.example.com/k"
    ] * 2  # type: ignore[union-attr]
    private = StudyRequest.model_validate(
        {"base": {"notify": {"url": "http://10.0.0.5/k"}}, "preset": "article"}
    )
    with pytest.raises(SpecInvalid) as caught:
        expand(private, settings)
    assert {e.field for e in caught.value.errors} == {f"preset.{name}.notify.url" for name in ARTICLE_PRESETS}
