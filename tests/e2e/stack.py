"""The stack driver the suite uses: harness/stack.py (shared with bench/), under the
names the tests import; and the suite's own, shorter limits."""

from harness.stack import (
    BUCKET_SCRIPT,
    PROJECT,
    S3_ADMIN,
    STAGES,
    Stack,
    containers_labelled,
    poll,
    read_env_file,
    stack_settings,
    stage_outcomes,
)

# Shorter than shipped, so the tests of these limits wait seconds, not minutes: a run
# stuck in Pending is crashed after 90 s (shipped: 600 s; the suite's normal starts take
# seconds); 5 failed logins in 10 s lock an address out; the worker looks for runs every
# second (shipped: 5 s; the suite starts some 150 runs, each waiting for a poll).
TEST_LIMITS = {
    "MLTOY_PENDING_SECONDS": "90",
    "MLTOY_WORKER_POLL_SECONDS": "1",
    "MLTOY_LOGIN_FAILURES": "5",
    "MLTOY_LOGIN_WINDOW": "10s",
}

__all__ = [
    "BUCKET_SCRIPT",
    "PROJECT",
    "S3_ADMIN",
    "STAGES",
    "TEST_LIMITS",
    "Stack",
    "containers_labelled",
    "poll",
    "read_env_file",
    "stack_settings",
    "stage_outcomes",
]
