from flows.dvc_output import RAN, RESTORED, SKIPPED, stage_outcomes


def test_outcomes_are_read_from_dvc_repro_output():
    lines = [
        "'data/raw/iris.csv.dvc' didn't change, skipping",
        "Stage 'prepare' didn't change, skipping",
        "Running stage 'train':",
        "> python -m mltoy.cli train",
        "Stage 'evaluate' is cached - skipping run, checking out outputs",
        "Updating lock file 'dvc.lock'",
    ]
    assert stage_outcomes(lines) == {"prepare": SKIPPED, "train": RAN, "evaluate": RESTORED}


def test_no_stage_lines_means_no_outcomes():
    assert stage_outcomes(["Data and pipelines are up to date."]) == {}
