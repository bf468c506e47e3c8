"""The object-store identity flow runs use: limited to the DVC bucket, made by remote-init.

Flow containers run pipeline code; a compromised run holding the store's root key could
read, overwrite or delete every bucket and create new users. So remote-init uses the root
key only here, to create (or keep) one user whose policy allows object reads and writes
in the remote's bucket and nothing else, and hands flows that user's key.

Back-ends (setting `S3_ADMIN_API`):
- `iam`: the AWS IAM API (AWS, Ceph RGW, SeaweedFS, the moto stand-in): user, inline
  policy, access key;
- `minio`: MinIO's admin API: user (its access key is its name), policy, attachment;
- `none`: the user made the key themselves and gives it as FLOW_ACCESS_KEY_ID/SECRET.

Re-run on every `up`: the key already handed to flows (read back from the settings volume)
is kept while the store still knows it; otherwise the user's old keys are deleted and one
new key is made, so keys never pile up.
"""

from __future__ import annotations

import json
import secrets
from configparser import ConfigParser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from deploy.polling import poll

POLICY_NAME = "mltoy-dvc-bucket"


def bucket_policy(bucket: str) -> dict[str, Any]:
    """What DVC (push, pull, status -c, run cache) and Prefect's s3fs result storage need.

    HEAD object is authorized as s3:GetObject; multipart uploads (DVC/s3fs for large files)
    as s3:PutObject, plus listing and aborting parts. No bucket creation or deletion, no
    other bucket, no listing of all buckets, no policy or ACL changes.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListTheDvcBucket",
                "Effect": "Allow",
                "Action": [
                    "s3:ListBucket",
                    "s3:GetBucketLocation",
                    "s3:ListBucketMultipartUploads",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Sid": "ObjectsInTheDvcBucket",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


@dataclass(frozen=True)
class FlowKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)


def read_key(credentials_file: Path) -> FlowKey | None:
    """The key a previous run wrote for flows (botocore's credentials file), if any."""
    if not credentials_file.is_file():
        return None
    parser = ConfigParser()
    parser.read(credentials_file)
    section = parser["default"] if parser.has_section("default") else {}
    key_id, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    return FlowKey(key_id, secret) if key_id and secret else None


class Provisioner(Protocol):
    def ensure(self, user: str, bucket: str, current: FlowKey | None) -> FlowKey: ...


class IamProvisioner:
    """Through the IAM API: an IAM client signed with the root key."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam

    def ensure(self, user: str, bucket: str, current: FlowKey | None) -> FlowKey:
        from botocore.exceptions import ClientError

        try:
            self.iam.get_user(UserName=user)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            self.iam.create_user(UserName=user)
        # Replaces the policy each time: a changed bucket or policy takes effect.
        self.iam.put_user_policy(
            UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(bucket_policy(bucket))
        )
        existing = self.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        keep = None
        if current is not None:
            keep = next(
                (
                    k["AccessKeyId"]
                    for k in existing
                    if k["AccessKeyId"] == current.access_key_id and k.get("Status") == "Active"
                ),
                None,
            )
        for key in existing:  # keys whose secret nobody holds any more
            if key["AccessKeyId"] != keep:
                self.iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        if keep is not None and current is not None:
            return current
        created = self.iam.create_access_key(UserName=user)["AccessKey"]
        return FlowKey(created["AccessKeyId"], created["SecretAccessKey"])


class MinioProvisioner:
    """Through MinIO's admin API (`minio.MinioAdmin`, signed with the root key).

    A MinIO user's access key is its name and its secret is chosen by the caller, so
    "keeping the key" means setting the same secret again; a new one is generated only
    when the settings volume holds none for this user.
    """

    def __init__(self, admin: Any) -> None:
        self.admin = admin

    def ensure(self, user: str, bucket: str, current: FlowKey | None) -> FlowKey:
        from minio.error import MinioAdminException

        if current is not None and current.access_key_id == user:
            secret = current.secret_access_key
        else:
            secret = secrets.token_urlsafe(30)  # 40 characters: MinIO's maximum
        policy = f"{POLICY_NAME}-{bucket}"
        self.admin.policy_add(policy, policy=bucket_policy(bucket))
        self.admin.user_add(user, secret)
        try:
            self.admin.attach_policy([policy], user=user)
        except MinioAdminException as exc:
            if "AlreadyApplied" not in str(exc):  # XMinioAdminPolicyChangeAlreadyApplied
                raise
        return FlowKey(user, secret)


def iam_client(endpoint_url: str | None, region: str, root: FlowKey) -> Any:
    from botocore.session import get_session

    return get_session().create_client(
        "iam",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=root.access_key_id,
        aws_secret_access_key=root.secret_access_key,
    )


def minio_admin(endpoint_url: str | None, region: str, root: FlowKey) -> Any:
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    if not endpoint_url:
        raise ValueError("S3_ADMIN_API=minio needs the MinIO server's URL (S3_ENDPOINT_URL)")
    url = urlparse(endpoint_url)
    return MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(root.access_key_id, root.secret_access_key),
        region=region,
        secure=url.scheme == "https",
    )


def wait_until_usable(s3: Any, bucket: str, timeout: float = 60.0) -> None:
    """Poll a one-key listing with the flow key: new IAM keys take seconds to work on AWS,
    and a key that never works should stop remote-init, not the first flow run."""
    from botocore.exceptions import ClientError

    refused: list[ClientError] = []

    def listed() -> bool | None:
        try:
            s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return True
        except ClientError as exc:
            refused.append(exc)
            return None

    try:
        poll(listed, timeout, f"the flow key to list bucket {bucket}")
    except TimeoutError:
        code = refused[-1].response.get("Error", {}).get("Code")
        raise RuntimeError(
            f"the flow key cannot list bucket {bucket} after {timeout:.0f}s ({code})"
        ) from refused[-1]
