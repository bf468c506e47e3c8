"""What drives the bundle from the outside, shared by the tests and the benchmark.

`harness.stack` brings up and drives the compose stack (tests/e2e, bench);
`harness.workspace` makes throw-away DVC workspaces (tests/flows, bench). It lives
beside them, not in tests/, so that bench/ imports a plain package rather than a test
suite's internals; neither `mltoy` nor `flows` imports it.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent  # the venv running the tests or the bench


def make_in_checkout(*args: str) -> list[str]:
    """`make ARGS` for another checkout of the bundle, run with this venv.

    Its venv stamp (the Makefile's STAMP) is marked as old (`make -o`): where the
    checkout's lock or pyproject.toml is newer than the stamp, make would set the venv up
    again, and point its editable install of `mltoy` and `flows` at that checkout (often
    a temporary directory, gone after the test: the venv then no longer finds them).
    """
    return ["make", "-o", str(VENV / ".installed"), *args, f"VENV={VENV}"]


def load_script(relpath: str, name: str) -> ModuleType:
    """A script of an image (docker/*/serve.py), not a package: its module, by path."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relpath)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
