"""Option B's content store: a missing object and an unreachable remote are told apart."""

from __future__ import annotations

import re

import pytest

from flows.content_store import ContentStore, MissingObjectError, RemoteUnavailableError
from flows.retry import is_bad_input
from tests.support import use_unreachable_s3_remote

NOWHERE = "0123456789abcdef0123456789abcdef"


def test_an_object_in_neither_cache_nor_remote_is_missing_and_not_worth_a_retry(project):
    store = ContentStore(project, use_remote=True)  # the project's local-directory remote
    with pytest.raises(MissingObjectError, match="data/x.csv: object 0123") as failure:
        store.restore({"data/x.csv": NOWHERE})
    assert is_bad_input(failure.value)
    assert not (project / "data/x.csv").exists()


@pytest.mark.slow
def test_an_unreachable_remote_is_named_and_worth_a_retry(project):
    endpoint = use_unreachable_s3_remote(project)
    store = ContentStore(project, use_remote=True)
    expected = rf"remote 'storage' \(s3://mltoy/dvc at {re.escape(endpoint)}\) is unreachable"
    with pytest.raises(RemoteUnavailableError, match=expected) as failure:
        store.restore({"data/x.csv": NOWHERE})  # not "missing": nobody could look
    assert not is_bad_input(failure.value)
    (project / "x.txt").write_text("x")
    with pytest.raises(RemoteUnavailableError, match=expected):
        store.save(["x.txt"])
