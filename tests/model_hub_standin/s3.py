"""A local S3-compatible server for the signed-S3 tests: moto's server on 127.0.0.1, IAM enforced.

moto checks every request's AWS Signature V4 against the access keys it issued and the IAM policies
attached to their users, once its first INITIAL_NO_AUTH_ACTION_COUNT actions (the set-up: an IAM user,
its access key and its policy) are done. It records every request it receives (method, URL, headers)
in a file, so a test can see the Range and Authorization headers a fetch sent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# IAM actions moto lets through unsigned before it enforces signatures: the reader's user, access key and
# policy, then a second user and key with no policy at all.
SETUP_ACTIONS = 5
REGION = "us-east-1"


@dataclass(frozen=True)
class Key:
    access_key: str
    secret_key: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MotoS3:
    """`with MotoS3(tmp) as s3:` starts the server; `s3.private_bucket(...)` fills a bucket as its reader."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.port = free_port()
        self.recording = run_dir / "requests.jsonl"
        self.process: subprocess.Popen | None = None
        self.reader: Key | None = None  # may read the bucket (s3:GetObject, s3:PutObject for the set-up)
        self.stranger: Key | None = None  # a valid key without any permission

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoS3:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS),
            "MOTO_ENABLE_RECORDING": "1",
            "MOTO_RECORDER_FILEPATH": str(self.recording),
        }
        log = (self.run_dir / "moto.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"moto's server did not start: {(self.run_dir / 'moto.log').read_text()}")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self, service: str, key: Key | None = None):
        import botocore.session  # noqa: PLC0415 - a dev dependency, imported where the tests use it

        key = key or Key("setup", "setup")  # any key: the set-up actions are not checked
        return botocore.session.get_session().create_client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=key.access_key,
            aws_secret_access_key=key.secret_key,
        )

    def private_bucket(self, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
        """Create the reader (allowed on this bucket only) and a stranger, then the bucket and its
        objects, uploaded with the reader's key: from the first upload on, every request is checked."""
        iam = self.client("iam")
        iam.create_user(UserName="model-reader")
        created = iam.create_access_key(UserName="model-reader")["AccessKey"]
        self.reader = Key(created["AccessKeyId"], created["SecretAccessKey"])
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:CreateBucket", "s3:PutObject", "s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
        iam.put_user_policy(
            UserName="model-reader", PolicyName="read-models", PolicyDocument=json.dumps(policy)
        )
        iam.create_user(UserName="stranger")
        created = iam.create_access_key(UserName="stranger")["AccessKey"]
        self.stranger = Key(created["AccessKeyId"], created["SecretAccessKey"])
        s3 = self.client("s3", self.reader)
        s3.create_bucket(Bucket=bucket)
        for name, body in files.items():
            s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)

    def requests(self) -> list[dict]:
        """Every request received so far: method, url, headers."""
        if not self.recording.exists():
            return []
        return [json.loads(line) for line in self.recording.read_text().splitlines() if line.strip()]
