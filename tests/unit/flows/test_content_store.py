"""Option B's content store: a missing object and an unreachable remote are told apart."""

from __future__ import annotations

import pickle
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


def test_a_missing_object_names_its_file_across_a_pickle(project):
    store = ContentStore(project, use_remote=False)
    with pytest.raises(MissingObjectError) as failure:
        store.restore({"data/x.csv": NOWHERE})
    again = pickle.loads(pickle.dumps(failure.value))  # as Prefect keeps a task's error
    assert (again.relpath, again.oid, str(again)) == ("data/x.csv", NOWHERE, str(failure.value))


def test_a_corrupt_object_in_the_remote_is_never_used_and_is_replaced(project):
    """The md5 of what comes back from the remote is checked against its name."""
    store = ContentStore(project, use_remote=True)  # the project's local-directory remote
    (project / "x.txt").write_text("the real content\n")
    (oid,) = store.save(["x.txt"]).values()
    remote_copy = next((project / ".dvc-remote").rglob(oid[2:]))
    remote_copy.chmod(0o644)
    remote_copy.write_text("a partial upload")
    for cached in (project / ".dvc/cache").rglob("*"):  # as `dvc gc` removes objects
        if cached.is_file():
            cached.unlink()
    (project / "x.txt").unlink()
    with pytest.raises(MissingObjectError, match="does not match its md5") as failure:
        store.restore({"x.txt": oid})
    assert failure.value.relpath == "x.txt" and not (project / "x.txt").exists()
    assert not any((project / ".dvc/cache").rglob(oid[2:]))  # not kept in the cache
    # The stage that makes it runs again and stores it: the remote's copy is replaced.
    (project / "x.txt").write_text("the real content\n")
    store.save(["x.txt"])
    assert remote_copy.read_text() == "the real content\n"
