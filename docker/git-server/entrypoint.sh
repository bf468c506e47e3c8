#!/usr/bin/env bash
# Start the Git server: the bare repository (created empty on a new volume), the password
# file for the two identities, the hooks' settings, then lighttpd in the foreground.
set -euo pipefail
: "${GIT_USER:?GIT_USER is the Git user of the developer}"
: "${GIT_PASSWORD:?GIT_PASSWORD is the Git password of the developer}"
: "${GIT_FLOW_USER:?GIT_FLOW_USER is the Git user of flow runs}"
: "${GIT_FLOW_PASSWORD:?GIT_FLOW_PASSWORD is the Git password of flow runs}"
REPOSITORY=${GIT_REPOSITORY:-mltoy}
RUNTIME=/run/git-server
repo=/srv/git/$REPOSITORY.git
umask 077

if [ "$GIT_USER" = "$GIT_FLOW_USER" ]; then
  echo "git-server: error: GIT_USER and GIT_FLOW_USER must differ" >&2
  exit 2
fi

if [ ! -d "$repo" ]; then
  git init --quiet --bare --initial-branch=main "$repo"
  echo "git-server: created the empty repository $REPOSITORY.git (make up pushes the first commit)"
fi
# Settings of the repository, re-applied at each start so an upgrade takes effect.
git -C "$repo" config core.hooksPath /etc/git-server/hooks
git -C "$repo" config http.receivepack true
git -C "$repo" config receive.fsckObjects true
# Partial clones and fetching one commit by its SHA (Prefect's git_clone with commit_sha).
git -C "$repo" config uploadpack.allowFilter true
git -C "$repo" config uploadpack.allowReachableSHA1InWant true

# Password hashes (SHA-512 crypt), never the passwords, in lighttpd's user file.
hash() { printf '%s' "$1" | openssl passwd -6 -stdin; }
printf '%s:%s\n%s:%s\n' \
  "$GIT_USER" "$(hash "$GIT_PASSWORD")" "$GIT_FLOW_USER" "$(hash "$GIT_FLOW_PASSWORD")" \
  > "$RUNTIME/htpasswd.tmp"
mv "$RUNTIME/htpasswd.tmp" "$RUNTIME/htpasswd"

# What the hooks need: who the flows are (update) and where Prefect's events go (post-receive).
python3 - "$RUNTIME/hooks.json" <<'PY'
import json, os, sys
settings = {
    "flow_user": os.environ["GIT_FLOW_USER"],
    "repository": os.environ.get("GIT_REPOSITORY", "mltoy"),
    "prefect_api_url": os.environ.get("PREFECT_API_URL", ""),
    "prefect_auth_string": os.environ.get("PREFECT_API_AUTH_STRING", ""),
    "trigger_ref": os.environ.get("GIT_TRIGGER_REF", "refs/heads/main"),
}
with open(sys.argv[1] + ".tmp", "w") as handle:
    json.dump(settings, handle)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
PY

mkdir -p "$RUNTIME/www"
echo ok > "$RUNTIME/www/healthz"
echo "git-server: serving http://0.0.0.0:8080/$REPOSITORY.git (users $GIT_USER, $GIT_FLOW_USER)"
# The passwords stay out of lighttpd's (and so the hooks') environment.
exec env -u GIT_PASSWORD -u GIT_FLOW_PASSWORD -u PREFECT_API_AUTH_STRING \
  lighttpd -D -f /etc/git-server/lighttpd.conf
