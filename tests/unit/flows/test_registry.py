"""The promotion rule: strictly better wins, a tie or an unknown value keeps the champion."""

from __future__ import annotations

import pytest

from flows.registry import KEPT, PROMOTED, decide


@pytest.mark.parametrize(
    ("candidate", "champion", "has_champion", "outcome", "reason"),
    [
        (0.9, None, False, PROMOTED, "first version: no champion yet"),
        (0.97, 0.91, True, PROMOTED, "accuracy 0.97 > 0.91"),
        (0.91, 0.91, True, KEPT, "accuracy 0.91 = 0.91: champion kept"),
        (0.75, 0.91, True, KEPT, "accuracy 0.75 < 0.91: champion kept"),
        (0.99, None, True, KEPT, "the champion has no accuracy: cannot compare, champion kept"),
    ],
)
def test_decide(candidate, champion, has_champion, outcome, reason):
    assert decide("accuracy", candidate, champion, has_champion) == (outcome, reason)
