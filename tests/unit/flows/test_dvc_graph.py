from __future__ import annotations

import pytest

from flows.dvc_graph import ParamRef, PipelineDefinitionError, load_pipeline, parse_pipeline


def test_repo_pipeline_is_the_prepare_train_evaluate_chain(repo_root):
    pipeline = load_pipeline(repo_root)
    assert pipeline.order() == ["prepare", "train", "evaluate"]
    assert pipeline.upstream == {
        "prepare": frozenset(),
        "train": frozenset({"prepare"}),
        "evaluate": frozenset({"prepare", "train"}),
    }
    assert pipeline.metrics_files == ("reports/metrics.json",)
    assert "data/raw/iris.csv" in pipeline.external_deps("prepare")
    assert "data/prepared/train.csv" not in pipeline.external_deps("train")
    assert pipeline.stages["train"].params == (ParamRef("params.yaml", "train"),)


def test_edges_follow_paths_including_directories_and_wdir():
    pipeline = parse_pipeline(
        {
            "stages": {
                "report": {"cmd": "r", "deps": ["out/features/a.csv"], "outs": ["report.md"]},
                "features": {"cmd": "f", "wdir": "out", "deps": ["../raw"], "outs": ["features"]},
                "clean": {"cmd": "c", "outs": ["raw"], "params": [{"other.yaml": ["x.y"]}]},
            }
        }
    )
    assert pipeline.order() == ["clean", "features", "report"]
    assert pipeline.stages["features"].deps == ("raw",)
    assert pipeline.stages["features"].outs == ("out/features",)
    assert pipeline.stages["clean"].params == (ParamRef("other.yaml", "x.y"),)


def test_independent_stages_keep_file_order():
    pipeline = parse_pipeline(
        {"stages": {"b": {"cmd": "x", "outs": ["b"]}, "a": {"cmd": "y", "outs": ["a"]}}}
    )
    assert pipeline.order() == ["b", "a"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "'stages' mapping"),
        ({"stages": {"a": {"deps": []}}}, "stage 'a': 'cmd'"),
        ({"stages": {"a": {"cmd": "x", "foreach": [1]}}}, "foreach/matrix"),
        (
            {"stages": {"a": {"cmd": "x", "outs": ["d"]}, "b": {"cmd": "y", "outs": ["d/f"]}}},
            "overlaps",
        ),
        (
            {
                "stages": {
                    "a": {"cmd": "x", "deps": ["b.out"], "outs": ["a.out"]},
                    "b": {"cmd": "y", "deps": ["a.out"], "outs": ["b.out"]},
                }
            },
            "cycle",
        ),
        ({"stages": {"a": {"cmd": "x", "deps": ["../../etc"]}}}, "escapes the project"),
    ],
)
def test_bad_pipelines_are_refused_with_a_reason(document, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        parse_pipeline(document)


def test_missing_dvc_yaml(tmp_path):
    with pytest.raises(PipelineDefinitionError, match="not found"):
        load_pipeline(tmp_path)


def test_tracked_sources_are_the_dvc_files_of_external_deps(repo_root, tmp_path):
    pipeline = load_pipeline(repo_root)
    sources = pipeline.tracked_sources(repo_root)
    assert list(sources) == ["data/raw/iris.csv"]
    assert len(sources["data/raw/iris.csv"]) == 32

    (tmp_path / "d.dvc").write_text("outs:\n- md5: abc.dir\n  path: d\n")
    with pytest.raises(PipelineDefinitionError, match="directories"):
        parse_pipeline({"stages": {"s": {"cmd": "x", "deps": ["d"]}}}).tracked_sources(tmp_path)
