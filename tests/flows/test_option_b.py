"""Option B: the task graph comes from dvc.yaml; its cache skips what DVC would skip."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import yaml

from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from mltoy.errors import ParamsError
from tests.flows.helpers import assert_reruns_like_dvc, set_param, snapshot, task_runs
from tests.support import make_project, run_in_repo

ALL = ("prepare", "train", "evaluate")


@pytest.mark.slow
def test_same_metrics_as_option_a(tmp_path, raw_iris):
    a = pipeline_a(project_dir=str(make_project(tmp_path / "a", raw_iris)))
    b = pipeline_b(project_dir=str(make_project(tmp_path / "b", raw_iris)))
    assert b["metrics"] == a["metrics"]
    assert b["stages"] == dict.fromkeys(ALL, "ran")


@pytest.mark.slow
def test_cache_skips_unchanged_stages_across_runs(project):
    pipeline_b(project_dir=str(project))
    outputs = snapshot(project)

    assert_reruns_like_dvc(lambda: pipeline_b(project_dir=str(project)), project)

    # Back to the first params: every stage is a cache hit, and the outputs of the
    # first run come back from the DVC cache byte for byte.
    set_param(project, "split.test_size", 0.3)
    set_param(project, "train.C", 1.0)
    assert pipeline_b(project_dir=str(project))["stages"] == dict.fromkeys(ALL, "skipped")
    assert snapshot(project) == outputs


# Run in a new interpreter against the session's server and result storage.
CACHED_RUN = """
import json, sys
from flows.option_b import pipeline_b
stages = pipeline_b(project_dir=sys.argv[1])["stages"]
heavy = ("pandas", "sklearn", "scipy")
print(json.dumps({"stages": stages, "imported": [m for m in heavy if m in sys.modules]}))
"""


@pytest.mark.slow
def test_a_run_whose_stages_are_all_cached_imports_no_training_library(project):
    """pandas, scikit-learn and scipy take seconds to import: only a stage that runs
    needs them (the run's reports, confusion matrix included, do without)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    pipeline_b(project_dir=str(project))
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(PREFECT_HOME.value()),
        "PREFECT_LOCAL_STORAGE_PATH": str(PREFECT_LOCAL_STORAGE_PATH.value()),
    }
    done = run_in_repo([sys.executable, "-c", CACHED_RUN, str(project)], env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["stages"] == dict.fromkeys(ALL, "skipped")
    assert result["imported"] == []


@pytest.mark.slow
def test_code_change_reruns_the_stages_that_depend_on_it(project):
    pipeline_b(project_dir=str(project))
    evaluate_py = project / "mltoy/evaluate.py"
    evaluate_py.write_text(evaluate_py.read_text() + "\n# a comment is a change too\n")
    assert pipeline_b(project_dir=str(project))["stages"] == {
        "prepare": "skipped",
        "train": "skipped",
        "evaluate": "ran",
    }


@pytest.mark.slow
def test_deleted_outputs_are_restored_on_a_cache_hit(project):
    first = pipeline_b(project_dir=str(project))
    outputs = snapshot(project)
    for path in ("models/model.joblib", "reports/metrics.json"):
        (project / path).unlink()
    again = pipeline_b(project_dir=str(project))
    assert again["stages"] == dict.fromkeys(ALL, "skipped")
    assert again["metrics"] == first["metrics"]
    assert snapshot(project) == outputs


@pytest.mark.slow
def test_cached_results_whose_objects_were_garbage_collected_run_again(project):
    """After `dvc gc` (here: every object in the DVC cache gone, and the outputs), a
    cached stage's result names objects nobody holds: a cache miss, not a failure of
    every later run."""
    first = pipeline_b(project_dir=str(project))
    outputs = snapshot(project)
    for cached in (project / ".dvc/cache").rglob("*"):
        if cached.is_file():
            cached.unlink()
    for path in ("data/prepared", "models", "reports"):
        shutil.rmtree(project / path)
    again = pipeline_b(project_dir=str(project))
    assert again["stages"]["evaluate"] == "ran"
    assert again["metrics"] == first["metrics"]
    assert snapshot(project) == outputs
    # Stored again: the next run is all cache hits.
    assert pipeline_b(project_dir=str(project))["stages"] == dict.fromkeys(ALL, "skipped")


@pytest.mark.slow
def test_a_stage_added_to_dvc_yaml_is_scheduled_in_its_place(project):
    """The graph is dvc.yaml's: a new stage between train and evaluate runs there."""
    dvc_yaml = project / "dvc.yaml"
    document = yaml.safe_load(dvc_yaml.read_text())
    card = (
        "import pathlib; size = pathlib.Path('models/model.joblib').stat().st_size;"
        " pathlib.Path('reports').mkdir(exist_ok=True);"
        " pathlib.Path('reports/card.md').write_text(f'model: {size} bytes')"
    )
    document["stages"]["model_card"] = {
        "cmd": f'python -c "{card}"',
        "deps": ["models/model.joblib"],
        "outs": ["reports/card.md"],
    }
    document["stages"]["evaluate"]["deps"].append("reports/card.md")
    dvc_yaml.write_text(yaml.safe_dump(document, sort_keys=False))

    state = pipeline_b(project_dir=str(project), return_state=True)
    result = state.result()
    assert result["stages"] == dict.fromkeys([*ALL, "model_card"], "ran")
    assert (project / "reports/card.md").read_text().startswith("model: ")
    runs = {run.name: run for run in task_runs(state.state_details.flow_run_id)}
    start = {name: runs[name].start_time for name in ("prepare", "train", "model_card", "evaluate")}
    end = {name: runs[name].end_time for name in start}
    assert end["train"] <= start["model_card"]
    assert end["model_card"] <= start["evaluate"]
    assert pipeline_b(project_dir=str(project))["stages"]["model_card"] == "skipped"


@pytest.mark.slow
def test_bad_params_fail_fast_and_keep_outputs(project):
    pipeline_b(project_dir=str(project))
    before = snapshot(project)
    with pytest.raises(ParamsError, match=r"train\.C"):
        pipeline_b(project_dir=str(project), params={"train": {"C": "strong"}})
    assert snapshot(project) == before


@pytest.mark.slow
def test_bad_raw_data_fails_clearly_and_keeps_outputs(project):
    pipeline_b(project_dir=str(project))
    before = snapshot(project)
    raw = project / "data/raw/iris.csv"
    raw.write_text(raw.read_text().splitlines()[0] + "\n")  # header only
    with pytest.raises(Exception, match="no rows"):
        pipeline_b(project_dir=str(project))
    assert snapshot(project) == before


def _share_remote(project, remote):
    (project / ".dvc/config.local").write_text(
        "[core]\n    no_scm = true\n    remote = shared\n"
        f"['remote \"shared\"']\n    url = {remote}\n"
    )
    return project


@pytest.mark.slow
def test_fresh_workspaces_share_the_cache_through_the_remote_only(tmp_path, raw_iris):
    """As flow containers do: no shared disk but the DVC remote and the results store."""
    remote, results = tmp_path / "remote", f"file://{tmp_path / 'results'}"
    first = _share_remote(make_project(tmp_path / "one", raw_iris), remote)
    second = _share_remote(make_project(tmp_path / "two", raw_iris), remote)
    kwargs = dict(use_remote=True, results_url=results)

    ran = pipeline_b(project_dir=str(first), **kwargs)
    assert ran["stages"] == dict.fromkeys(ALL, "ran")
    assert any((remote / "files" / "md5").iterdir())

    (second / "data/raw/iris.csv").unlink()  # a container starts without data

    again = pipeline_b(project_dir=str(second), **kwargs)
    assert again["stages"] == dict.fromkeys(ALL, "skipped")
    assert again["metrics"] == ran["metrics"]
    assert snapshot(second) == snapshot(first)
