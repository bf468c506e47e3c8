"""What drives the bundle from the outside, shared by the tests and the benchmark.

`harness.stack` brings up and drives the compose stack (tests/e2e, bench);
`harness.workspace` makes throw-away DVC workspaces (tests/flows, bench). It lives
beside them, not in tests/, so that bench/ imports a plain package rather than a test
suite's internals; neither `mltoy` nor `flows` imports it.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str) -> ModuleType:
    """A script of an image (docker/*/serve.py), not a package: its module, by path."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relpath)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
