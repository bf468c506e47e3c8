import pytest

from deploy.polling import poll


def test_returns_the_first_answer_that_is_not_none():
    answers = iter([None, None, "ready"])
    assert poll(lambda: next(answers), timeout=5, what="x", every=0) == "ready"


def test_gives_up_after_the_deadline_naming_what_it_waited_for():
    calls = []
    with pytest.raises(TimeoutError, match="waiting for the bucket"):
        poll(lambda: calls.append(1), timeout=0, what="the bucket", every=0)
    assert calls == [1]  # asked once even with no time left
