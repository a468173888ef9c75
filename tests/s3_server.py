"""An S3 server over HTTP of the tests' own: moto's standalone server, an S3 emulator (MinIO's
server is not on the package index). The service's code does not know which server it talks to:
it speaks S3 over HTTP with boto3, configured by the variables every AWS tool reads."""

import subprocess
import sys
from pathlib import Path

import boto3
import httpx

from tests.helpers import free_port, wait_for

REGION = "us-east-1"


class S3Server:
    """``moto.server`` on a free loopback port, with its log in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this server, as for the ``aws`` CLI."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "tests",
            "AWS_SECRET_ACCESS_KEY": "tests-secret",
        }

    def start(self) -> None:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with (self.folder / "s3.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        wait_for(self._answers, timeout=30, what="the S3 server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def create_bucket(self, name: str) -> None:
        env = self.env
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=name)

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False
