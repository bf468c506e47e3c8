#!/usr/bin/env bash
# Git hook helpers (.pre-commit-config.yaml); they warn and never fail the git command.
#   (no argument)  pre-commit: say when `dvc status` finds stale or missing outputs
#   --checkout     post-checkout: `dvc checkout`, as DVC's own hook does
set -uo pipefail
dvc=${DVC:-.venv/bin/dvc}
if [ "${1:-}" = "--checkout" ]; then
  "$dvc" checkout --quiet 2>/dev/null || echo "dvc checkout: some outputs are not in the cache (dvc pull fetches them)"
  exit 0
fi
if ! "$dvc" status --quiet >/dev/null 2>&1; then
  echo "warning: DVC outputs are not those of this commit's dvc.lock (dvc status below)."
  echo "         Run dvc repro to update them here, or push: the stack reproduces what changed."
  "$dvc" status 2>&1 | head -20
fi
exit 0
