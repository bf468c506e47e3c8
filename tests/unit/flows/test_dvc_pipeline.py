"""Option B reads the pipeline through DVC: these pin the DVC API it relies on.

A DVC upgrade that renames stages, changes the graph's direction, resolves `foreach`,
`matrix` or `vars` differently, or plans `dvc repro` otherwise fails one of these.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.dvc_output import stage_outcomes
from flows.dvc_pipeline import ParamRef, PipelineDefinitionError, load_pipeline

TEMPLATED = {
    "vars": ["config.yaml", {"suffix": "txt"}],
    "stages": {
        "gen": {
            "foreach": "${models}",
            "do": {
                "cmd": "echo ${item.name} ${item.c} > out/${item.name}.${suffix}",
                "params": [{"config.yaml": ["models"]}],
                "outs": ["out/${item.name}.${suffix}"],
            },
        },
        "grid": {
            "matrix": {"a": [1, 2], "b": ["x", "y"]},
            "cmd": "cat out/lr.txt > grid/${item.a}-${item.b}.txt",
            "deps": ["out/lr.txt"],
            "outs": ["grid/${item.a}-${item.b}.txt"],
        },
        "report": {
            "wdir": "sub",
            "cmd": [
                "echo one > ../notes.txt",
                "cat ../out/*.txt > ../report.txt",
                "echo {} > ../metrics.json",
            ],
            "deps": ["../out"],
            "params": ["threshold", {"other.toml": None}],
            "outs": ["../report.txt", {"../notes.txt": {"persist": True}}],
            "metrics": ["../metrics.json"],
        },
    },
}


def dvc_project(root: Path, document: dict, files: dict[str, str] | None = None) -> Path:
    from dvc.repo import Repo

    root.mkdir(parents=True, exist_ok=True)
    Repo.init(str(root), no_scm=True).close()
    (root / "dvc.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    for relpath, text in (files or {}).items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    return root


@pytest.fixture
def templated(tmp_path: Path) -> Path:
    return dvc_project(
        tmp_path / "templated",
        TEMPLATED,
        {
            "config.yaml": "models:\n  - {name: lr, c: 1}\n  - {name: svm, c: 2}\n",
            "sub/params.yaml": "threshold: 3\n",
            "sub/other.toml": "a = 1\n[b]\nc = 2\n",
            "out/.keep": "",  # commands write into these; DVC does not create them
            "grid/.keep": "",
        },
    )


def test_repo_pipeline_is_the_prepare_train_evaluate_chain(project):
    pipeline = load_pipeline(project)
    assert pipeline.order() == ["prepare", "train", "evaluate"]
    assert pipeline.upstream == {
        "prepare": frozenset(),
        "train": frozenset({"prepare"}),
        "evaluate": frozenset({"prepare", "train"}),
    }
    assert pipeline.metrics_files == ("reports/metrics.json",)
    assert "data/raw/iris.csv" in pipeline.external_deps("prepare")
    assert "data/prepared/train.csv" not in pipeline.external_deps("train")
    assert pipeline.stages["train"].params == (ParamRef("params.yaml", ("train",)),)
    assert "reports/plots/confusion.csv" in pipeline.stages["evaluate"].outs
    tracked = yaml.safe_load((project / "data/raw/iris.csv.dvc").read_text())["outs"][0]
    assert pipeline.tracked_sources == {"data/raw/iris.csv": tracked["md5"]}


def test_foreach_matrix_and_vars_are_expanded_as_dvc_names_them(templated):
    pipeline = load_pipeline(templated)
    stages = pipeline.stages
    assert set(stages) == {
        "gen@0",
        "gen@1",
        "grid@1-x",
        "grid@1-y",
        "grid@2-x",
        "grid@2-y",
        "report",
    }
    assert stages["gen@1"].cmd == "echo svm 2 > out/svm.txt"
    assert stages["gen@1"].outs == ("out/svm.txt",)
    assert stages["gen@0"].params == (ParamRef("config.yaml", ("models",)),)
    assert stages["grid@2-y"].cmd == "cat out/lr.txt > grid/2-y.txt"
    assert pipeline.upstream["grid@2-y"] == {"gen@0"}  # out/lr.txt only
    assert pipeline.upstream["report"] == {"gen@0", "gen@1"}  # the directory out/
    order = pipeline.order()
    assert all(
        order.index(up) < order.index(name) for name in order for up in pipeline.upstream[name]
    )


def test_wdir_params_files_and_command_lists(templated):
    report = load_pipeline(templated).stages["report"]
    assert report.wdir == "sub"
    assert report.cmd == (
        "echo one > ../notes.txt && cat ../out/*.txt > ../report.txt && echo {} > ../metrics.json"
    )
    assert report.deps == ("out",)
    assert report.params == (
        ParamRef("sub/params.yaml", ("threshold",)),
        ParamRef("sub/other.toml"),
    )
    assert report.outs == ("report.txt", "notes.txt", "metrics.json")
    assert report.metrics == ("metrics.json",)
    assert report.persist == ("notes.txt",)


def test_the_plan_is_the_one_dvc_repro_runs(templated):
    """`dvc repro` names, in its order, the stages it runs: the same list."""
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=templated,
        capture_output=True,
        text=True,
        check=True,
    )
    ran = stage_outcomes(repro.stdout.splitlines())
    assert list(ran) == load_pipeline(templated).order()


def test_stages_of_another_dvc_yaml_run_only_when_needed_and_are_named_by_file(tmp_path):
    project = dvc_project(
        tmp_path / "p",
        {"stages": {"use": {"cmd": "cat lib/a > b", "deps": ["lib/a"], "outs": ["b"]}}},
    )
    (project / "lib").mkdir()
    (project / "lib/dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "make": {"cmd": "echo a > a", "outs": ["a"]},
                    "unused": {"cmd": "echo c > c", "outs": ["c"]},
                }
            }
        )
    )
    pipeline = load_pipeline(project)
    assert pipeline.order() == ["lib/dvc.yaml:make", "use"]
    assert pipeline.stages["lib/dvc.yaml:make"].wdir == "lib"
    assert pipeline.upstream["use"] == {"lib/dvc.yaml:make"}


def test_always_changed_and_callback_stages_are_never_cached(tmp_path):
    project = dvc_project(
        tmp_path / "p",
        {
            "stages": {
                "clock": {"cmd": "date > now", "outs": ["now"], "always_changed": True},
                "ping": {"cmd": "echo ping"},
                "copy": {"cmd": "cp now then", "deps": ["now"], "outs": ["then"]},
            }
        },
    )
    stages = load_pipeline(project).stages
    assert stages["clock"].always_changed and stages["ping"].always_changed
    assert not stages["copy"].always_changed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"stages": {"a": {"cmd": "x ${nope}"}}}, "nope"),
        (
            {"stages": {"a": {"cmd": "x", "outs": ["d"]}, "b": {"cmd": "y", "outs": ["d/f"]}}},
            "overlap",
        ),
        (
            {
                "stages": {
                    "a": {"cmd": "x", "deps": ["b.out"], "outs": ["a.out"]},
                    "b": {"cmd": "y", "deps": ["a.out"], "outs": ["b.out"]},
                }
            },
            "both a dependency and an output",  # DVC's words for this cycle
        ),
        ({"stages": {"a": {"cmd": "x", "deps": ["../../etc/passwd"]}}}, "outside the project"),
        ({"stages": {"a": {"cmd": "x", "frozen": True}}}, "frozen"),
        ({"stages": {"a": {"deps": ["x"]}}}, "cmd"),
    ],
)
def test_what_cannot_run_is_refused_with_dvc_s_reason(tmp_path, document, message):
    project = dvc_project(tmp_path / "p", document)
    with pytest.raises(PipelineDefinitionError, match=message):
        load_pipeline(project)


def test_a_tracked_directory_is_refused(tmp_path):
    project = dvc_project(
        tmp_path / "p", {"stages": {"s": {"cmd": "ls d", "deps": ["d"], "outs": ["o"]}}}
    )
    (project / "d.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: d\n"
    )
    with pytest.raises(PipelineDefinitionError, match="directories"):
        load_pipeline(project)


def test_a_project_in_a_directory_of_a_dvc_repository_is_read_from_there(tmp_path):
    """As `dvc repro` run in that directory: its dvc.yaml's stages, named without a path."""
    with pytest.raises(PipelineDefinitionError, match="not found"):
        load_pipeline(tmp_path)
    repository = dvc_project(tmp_path / "repo", {"stages": {"top": {"cmd": "echo top"}}})
    (repository / "inner").mkdir()
    (repository / "inner/dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"s": {"cmd": "cat a > b", "deps": ["a"], "outs": ["b"]}}})
    )
    pipeline = load_pipeline(repository / "inner")
    assert pipeline.order() == ["s"]
    assert pipeline.stages["s"].deps == ("a",) and pipeline.stages["s"].outs == ("b",)
