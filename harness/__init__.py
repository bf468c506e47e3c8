"""What drives the bundle from the outside, shared by the tests and the benchmark.

`harness.stack` brings up and drives the compose stack (tests/e2e, bench);
`harness.workspace` makes throw-away DVC workspaces (tests/flows, bench). It lives
beside them, not in tests/, so that bench/ imports a plain package rather than a test
suite's internals; neither `mltoy` nor `flows` imports it.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
