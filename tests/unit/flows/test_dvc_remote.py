"""Which bucket an error says is missing: a setting to fix, told from other failures."""

from __future__ import annotations

import pytest

from flows.dvc_remote import missing_bucket, missing_bucket_message

GS = {"core": {"remote": "storage"}, "remote": {"storage": {"url": "gs://mltoy/dvc"}}}
S3 = {"core": {"remote": "storage"}, "remote": {"storage": {"url": "s3://data-1/dvc"}}}


@pytest.mark.parametrize(
    ("text", "config", "bucket"),
    [
        # gcsfs, as DVC prints it and as option B's content store sees it
        ("ERROR: unexpected error - b/no-such-bucket/o", GS, "no-such-bucket"),
        (
            "ERROR: failed to transfer '/p/.dvc/cache/runs/8c/8c/d8' - "
            "http://gcs:4443/upload/storage/v1/b/no-such-bucket/o",
            GS,
            "no-such-bucket",
        ),
        (
            "FileNotFoundError: https://storage.googleapis.com/upload/storage/v1/b/my.bkt/o",
            GS,
            "my.bkt",
        ),
        # botocore names no bucket: the remote's URL does
        (
            "ERROR: failed to transfer - An error occurred (NoSuchBucket) when calling "
            "the PutObject operation: The specified bucket does not exist",
            S3,
            "data-1",
        ),
        # a missing object in an existing bucket, and other failures, are not
        ("FileNotFoundError: mltoy/dvc/files/md5/ab/cdef", GS, None),
        ("FileNotFoundError: http://gcs:4443/storage/v1/b/mltoy/o/dvc%2Ffiles", GS, None),
        ("ERROR: failed to push data to the cloud - 1 files failed to upload", GS, None),
        ("ERROR: unexpected error - Cannot connect to host gcs:4443", GS, None),
    ],
)
def test_missing_bucket_is_told_from_other_failures(text, config, bucket):
    assert missing_bucket(text, config) == bucket


def test_the_message_names_remote_and_bucket():
    assert missing_bucket_message("nope", GS) == (
        "remote 'storage' (gs://mltoy/dvc): bucket 'nope' does not exist "
        "(create it, or fix the remote's URL; DVC never creates buckets)"
    )
