"""The flows' bucket-scoped identity: its policy, the MinIO back-end (with a fake admin
client: no MinIO server can run here), and the stand-in's guard."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from minio.error import MinioAdminException

from deploy.flow_identity import POLICY_NAME, FlowKey, MinioProvisioner, bucket_policy
from tests.unit.deploy.conftest import Store


def test_policy_allows_objects_and_listing_in_the_bucket_only():
    policy = bucket_policy("mltoy")
    by_resource = {tuple(s["Resource"]): set(s["Action"]) for s in policy["Statement"]}
    assert by_resource == {
        ("arn:aws:s3:::mltoy",): {
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:ListBucketMultipartUploads",
        },
        ("arn:aws:s3:::mltoy/*",): {
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        },
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in policy["Statement"])


class FakeMinioAdmin:
    """Records calls the way `minio.MinioAdmin` would receive them."""

    def __init__(self, attach_error: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.attach_error = attach_error

    def policy_add(self, name, policy_file=None, policy=None):
        self.calls.append(("policy_add", name, policy))
        return ""

    def user_add(self, access_key, secret_key):
        self.calls.append(("user_add", access_key, secret_key))
        return ""

    def attach_policy(self, policies, user=None, group=None):
        self.calls.append(("attach_policy", policies, user))
        if self.attach_error:
            raise MinioAdminException("400", self.attach_error)
        return ""


def test_minio_back_end_makes_user_policy_and_attachment():
    admin = FakeMinioAdmin()
    key = MinioProvisioner(admin).ensure("mltoy-flows", "mltoy", None)
    assert key.access_key_id == "mltoy-flows"
    assert 8 <= len(key.secret_access_key) <= 40  # MinIO's limits for a secret key
    policy = f"{POLICY_NAME}-mltoy"
    assert admin.calls == [
        ("policy_add", policy, bucket_policy("mltoy")),
        ("user_add", "mltoy-flows", key.secret_access_key),
        ("attach_policy", [policy], "mltoy-flows"),
    ]


def test_minio_back_end_keeps_the_secret_flows_already_have():
    current = FlowKey("mltoy-flows", "the-secret-flows-hold")
    admin = FakeMinioAdmin(attach_error='{"Code":"XMinioAdminPolicyChangeAlreadyApplied"}')
    assert MinioProvisioner(admin).ensure("mltoy-flows", "mltoy", current) == current
    assert ("user_add", "mltoy-flows", "the-secret-flows-hold") in admin.calls


def test_minio_back_end_makes_a_new_secret_for_another_user():
    admin = FakeMinioAdmin()
    key = MinioProvisioner(admin).ensure("mltoy-flows", "mltoy", FlowKey("someone", "x" * 20))
    assert key.secret_access_key != "x" * 20


def test_minio_back_end_reports_other_admin_errors():
    admin = FakeMinioAdmin(attach_error='{"Code":"XMinioAdminNoSuchPolicy"}')
    with pytest.raises(MinioAdminException):
        MinioProvisioner(admin).ensure("mltoy-flows", "mltoy", None)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_standin_refuses_moto_control_api_and_anonymous_requests(store: Store):
    """/moto-api could switch enforcement off (reset-auth) or dump every secret."""
    assert _status(f"{store.endpoint}/moto-api/data.json") == 403
    assert _status(f"{store.endpoint}/moto-api/reset-auth") == 403
    assert _status(f"{store.endpoint}/") == 403  # anonymous ListBuckets
    assert _status(f"{store.endpoint}/minio/health/live") == 200
