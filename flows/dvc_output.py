"""What `dvc repro` did to each stage, read from its output."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flows.dvc_remote import is_unreachable
from mltoy.errors import EXIT_BAD_INPUT

RAN = "ran"
SKIPPED = "skipped"
RESTORED = "restored"  # skipped, outputs restored from DVC's run cache

_PATTERNS = (
    (re.compile(r"^Running stage '([^']+)'"), RAN),
    (re.compile(r"^Stage '([^']+)' didn't change, skipping"), SKIPPED),
    (re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs"), RESTORED),
)


def stage_outcomes(lines: Iterable[str]) -> dict[str, str]:
    """{stage: ran|skipped|restored} for the dvc.yaml stages named in the output."""
    outcomes: dict[str, str] = {}
    for line in lines:
        for pattern, outcome in _PATTERNS:
            match = pattern.match(line.strip())
            if match and not match.group(1).endswith(".dvc"):
                outcomes.setdefault(match.group(1), outcome)
    return outcomes


def remote_unreachable(lines: Iterable[str]) -> bool:
    """True when DVC's errors say the remote could not be reached (not a bad stage)."""
    return any(line.startswith("ERROR") and is_unreachable(line) for line in lines)


# How `dvc repro` reports a stage whose command failed, on its first ERROR line:
#   ERROR: failed to reproduce 'train': failed to run: python -m mltoy.cli train ..., exited with 2
# (DVC's ReproductionError with dvc.stage.exceptions.StageCmdFailedError as its cause).
# A command that exits EXIT_BAD_INPUT refused its params or data, as mltoy does: another
# attempt would fail the same way. tests/unit/flows/test_dvc_output.py runs `dvc repro`
# to check that the installed DVC still words it so.
_BAD_INPUT = re.compile(rf"^ERROR: .*failed to run: .*, exited with {EXIT_BAD_INPUT}$")


def failed_on_bad_input(error_line: str) -> bool:
    """True when DVC's error line says a stage command exited with EXIT_BAD_INPUT."""
    return bool(_BAD_INPUT.match(error_line.rstrip()))
