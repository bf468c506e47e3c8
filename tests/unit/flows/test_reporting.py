import base64

import pytest

from flows.reporting import (
    change,
    confusion_figure,
    confusion_matrix,
    metrics_rows,
    png_data_url,
    pull_command,
)


@pytest.mark.parametrize(
    ("value", "previous", "expected"),
    [
        (0.9556, 0.9333, "+0.0223"),
        (0.9, 0.95, "-0.05"),
        (45, 45, "0"),
        (0.1 + 0.2, 0.3, "0"),  # float noise is no change
        (0.9, None, ""),
        ("macro", "micro", ""),
        (True, False, ""),
    ],
)
def test_change_against_the_previous_value(value, previous, expected):
    assert change(value, previous) == expected


def test_metrics_rows_name_value_previous_and_change():
    rows = metrics_rows({"accuracy": 0.96, "n_test": 45}, {"accuracy": 0.94})
    assert rows == [
        {"metric": "accuracy", "value": 0.96, "previous": 0.94, "change": "+0.02"},
        {"metric": "n_test", "value": 45, "previous": None, "change": ""},
    ]
    assert metrics_rows({"accuracy": 1.0}, None)[0]["previous"] is None


def test_confusion_matrix_counts_actual_by_predicted(tmp_path):
    csv = tmp_path / "confusion.csv"
    csv.write_text("actual,predicted\na,a\na,b\nb,b\nc,c\nc,c\n")
    labels, counts = confusion_matrix(csv)
    assert labels == ["a", "b", "c"]
    assert counts == [[1, 1, 0], [0, 1, 0], [0, 0, 2]]
    url = png_data_url(confusion_figure(csv))
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    assert base64.b64decode(url[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"


def test_pull_command_fetches_the_runs_results_first_when_it_has_them():
    assert pull_command(None) == "dvc pull models/model.joblib"
    assert pull_command("runs/abc1234") == (
        "git fetch stack && git checkout runs/abc1234 && dvc pull models/model.joblib"
    )
