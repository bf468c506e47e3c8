"""The stack driver the suite uses: harness/stack.py (shared with bench/), under the
names the tests import."""

from harness.stack import BUCKET_SCRIPT, PROJECT, S3_ADMIN, Stack, poll, stack_env, stage_outcomes

__all__ = ["BUCKET_SCRIPT", "PROJECT", "S3_ADMIN", "Stack", "poll", "stack_env", "stage_outcomes"]
