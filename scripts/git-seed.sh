#!/usr/bin/env bash
# Seed the stack's Git server with this checkout's HEAD, only if its repository is empty:
# never rewrites history. A repository that has commits is left alone (push yourself:
# git push stack main). The seed starts no run: on a new stack the push trigger is
# registered afterwards (deploy); the first runs are the schedules', or your next push.
set -euo pipefail
cd "$(dirname "$0")/.."
url="http://127.0.0.1:$(python3 scripts/dotenv_value.py GIT_PORT 8418)/mltoy.git"
# Credentials from .env through a helper: never in the URL, the arguments or a log.
git_stack() {
  GIT_TERMINAL_PROMPT=0 git -c credential.helper= \
    -c "credential.helper=!python3 '$PWD/scripts/git-credential-stack'" "$@"
}
if ! head=$(git rev-parse --verify -q HEAD); then
  echo "git-seed: error: $PWD is not a Git checkout with a commit: the stack's repository" \
    "needs one (git init && git commit), then make up" >&2
  exit 1
fi
refs=$(git_stack ls-remote "$url")
if [ -n "$refs" ]; then
  main=$(awk '$2 == "refs/heads/main" {print substr($1, 1, 7)}' <<<"$refs")
  echo "git-seed: $url has history (main at ${main:-none}); left as is (yours: ${head:0:7})"
  exit 0
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "git-seed: note: uncommitted changes are not seeded (only HEAD's commit is)"
fi
git_stack push --quiet "$url" "$head:refs/heads/main"
echo "git-seed: seeded $url: main = $(git log -1 --format='%h %s' "$head")"
