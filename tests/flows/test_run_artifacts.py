"""What a reviewer finds on a run's page: the confusion matrix (table and picture) and
the model's link with the way to `dvc pull` it (both options: PipelineRun.finish)."""

from __future__ import annotations

import base64
import json

import pytest

from flows.fingerprint import md5_file
from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from tests.flows.test_tracking import artifacts_of


@pytest.mark.slow
def test_confusion_matrix_and_model_link_artifacts(project):
    state = pipeline_b(project_dir=str(project), return_state=True)
    metrics = state.result()["metrics"]
    artifacts = artifacts_of(state.state_details.flow_run_id)

    table = artifacts["mltoy-confusion-matrix"]
    assert table.type == "table"
    rows = json.loads(table.data)
    classes = [row["actual \\ predicted"] for row in rows]
    assert classes == ["setosa", "versicolor", "virginica"]
    counts = [[row[c] for c in classes] for row in rows]
    assert sum(map(sum, counts)) == metrics["n_test"]
    correct = sum(counts[i][i] for i in range(len(classes)))
    assert correct / metrics["n_test"] == pytest.approx(metrics["accuracy"])

    plot = artifacts["mltoy-confusion-matrix-plot"]
    assert plot.type == "markdown"
    (encoded,) = [part.split(")")[0] for part in plot.data.split("data:image/png;base64,")[1:]]
    assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"

    # MLflow off: the link names the DVC object holding the model, and how to pull it.
    link = artifacts["mltoy-model"]
    md5 = md5_file(project / "models/model.joblib")
    remote_object = project / ".dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]
    assert link.data.endswith(f"({remote_object})"), link.data
    assert md5 in link.description and "dvc pull models/model.joblib" in link.description

    # Outside a deployment there is no previous run to compare with.
    metric_rows = json.loads(artifacts["mltoy-metrics"].data)
    assert {row["metric"]: row["value"] for row in metric_rows} == metrics
    assert all(row["previous"] is None and row["change"] == "" for row in metric_rows)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", [pipeline_a, pipeline_b])
def test_the_picture_is_cached_where_the_run_keeps_its_results(project, tmp_path, pipeline):
    """With `results_url` (what the deployments pass), the cached picture is stored there,
    where the next run's container finds it, not in this process's Prefect home."""
    results = tmp_path / "results"
    pipeline(project_dir=str(project), results_url=f"file://{results}")
    cached = [path.name for path in results.iterdir()]
    assert any(name.startswith("mltoy-confusion-plot-") for name in cached), cached
