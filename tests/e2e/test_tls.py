"""Redis over TLS, for real: the API, a worker and Celery's broker on a ``rediss://`` URL whose
certificate they check against the deployment's own CA."""

import subprocess
from pathlib import Path

import pytest

from tests.e2e.stack import assert_complete, stack_of, submit, wait_until_ended
from tests.helpers import free_port, tiny_spec
from tests.redis_server import RedisServer

pytestmark = pytest.mark.e2e


CERTIFICATES = (
    "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=tests-ca",
    "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
    "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
    "-extfile names.cnf",
)


def make_certificates(folder: Path) -> None:
    """A CA, and a certificate it signed for 127.0.0.1, with openssl."""
    (folder / "names.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in CERTIFICATES:
        subprocess.run(["openssl", *command.split()], cwd=folder, check=True, capture_output=True)


def test_jobs_run_on_a_redis_reached_over_tls(tmp_path: Path, datasets_dir: Path) -> None:
    certificates, tls_port = tmp_path / "tls", free_port()
    certificates.mkdir()
    make_certificates(certificates)
    tls = ("--tls-port", str(tls_port), "--tls-cert-file", str(certificates / "server.pem"))
    tls += (
        "--tls-key-file",
        str(certificates / "server.key"),
        "--tls-ca-cert-file",
        str(certificates / "ca.pem"),
    )
    tls += ("--tls-auth-clients", "no")
    (tmp_path / "redis").mkdir()
    # Its plain port is the tests' own way in (to make an API key); the service uses TLS only.
    redis = RedisServer(tmp_path / "redis", append_only=True, options=tls)
    redis.start()
    url = f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certificates / 'ca.pem'}"
    try:
        with stack_of(tmp_path, datasets_dir, primary=redis, REDIS_URL=url) as stack:
            stack.start_worker()
            job_id = submit(stack, tiny_spec())
            assert wait_until_ended(stack, job_id)["status"] == "succeeded"
            assert_complete(stack, job_id, 2)
            assert stack.readiness()["redis_contract"]["tls"] is True
    finally:
        redis.stop()
