"""Both options on one pipeline that uses DVC's templating: a `foreach` stage over a list
from a `vars` file, tracking a params file other than params.yaml. They must run the
same stages, step after step, and leave the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.dvc_pipeline import PipelineDefinitionError
from flows.option_a import pipeline_a
from flows.option_b import pipeline_b
from tests.flows.helpers import OUTPUTS, set_param
from tests.support import make_project

CARD_SCRIPT = """\
import json, pathlib, sys
import yaml
metric, out = sys.argv[1], pathlib.Path(sys.argv[2])
digits = yaml.safe_load(pathlib.Path("cards.yaml").read_text())["digits"]
value = json.loads(pathlib.Path("reports/metrics.json").read_text())[metric]
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(f"{metric}: {value:.{digits}f}\\n")
"""
CARDS = ("accuracy", "f1_macro")
BASE = ("prepare", "train", "evaluate")
STAGES = (*BASE, *(f"card@{metric}" for metric in CARDS))


def with_cards(project: Path) -> Path:
    """The repo's pipeline plus one `foreach` stage: a card per metric."""
    (project / "card.py").write_text(CARD_SCRIPT)
    (project / "cards.yaml").write_text(yaml.safe_dump({"cards": list(CARDS), "digits": 3}))
    dvc_yaml = project / "dvc.yaml"
    document = yaml.safe_load(dvc_yaml.read_text())
    document = {"vars": ["cards.yaml"], **document}
    document["stages"]["card"] = {
        "foreach": "${cards}",
        "do": {
            "cmd": "python card.py ${item} reports/cards/${item}.txt",
            "deps": ["card.py", "reports/metrics.json"],
            "params": [{"cards.yaml": ["digits"]}],
            "outs": ["reports/cards/${item}.txt"],
        },
    }
    dvc_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def outputs(project: Path) -> dict[str, bytes]:
    cards = [f"reports/cards/{metric}.txt" for metric in CARDS]
    return {relpath: (project / relpath).read_bytes() for relpath in (*OUTPUTS, *cards)}


def set_digits(project: Path, digits: int) -> None:
    (project / "cards.yaml").write_text(yaml.safe_dump({"cards": list(CARDS), "digits": digits}))


@pytest.mark.slow
def test_both_options_run_the_same_foreach_stages_and_write_the_same_outputs(tmp_path, raw_iris):
    a = with_cards(make_project(tmp_path / "a", raw_iris))
    b = with_cards(make_project(tmp_path / "b", raw_iris))

    def both() -> dict[str, str]:
        ran_a = pipeline_a(project_dir=str(a))["stages"]
        ran_b = pipeline_b(project_dir=str(b))["stages"]
        assert ran_a == ran_b
        assert outputs(a) == outputs(b)
        return ran_b

    assert both() == dict.fromkeys(STAGES, "ran")
    assert (a / "reports/cards/accuracy.txt").read_text().count(".") == 1
    assert both() == dict.fromkeys(STAGES, "skipped")

    for project in (a, b):  # only the cards track cards.yaml:digits
        set_digits(project, 5)
    assert both() == {**dict.fromkeys(BASE, "skipped"), **dict.fromkeys(STAGES[3:], "ran")}

    for project in (a, b):  # a train param: train onwards (the cards if the metrics moved)
        set_param(project, "train.C", 0.05)
    ran = both()
    assert ran["prepare"] == "skipped" and ran["train"] == ran["evaluate"] == "ran"


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", [pipeline_a, pipeline_b])
def test_a_pipeline_dvc_cannot_read_fails_both_options_before_any_stage(project, pipeline):
    dvc_yaml = project / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("--params params.yaml", "${nowhere}", 1))
    with pytest.raises(PipelineDefinitionError, match="nowhere"):
        pipeline(project_dir=str(project))
    assert not (project / "data/prepared").exists()  # nothing ran
