#!/bin/sh
# The builder preamble of the images that install Python packages (docker/Dockerfile,
# docker/s3-standin/Dockerfile, docker/mlflow/Dockerfile), run in their builder stage after
#   COPY docker/certs/ /usr/local/share/ca-certificates/extra/
#   COPY docker/builder.sh requirements-dev.lock /opt/builder/
# - trusts the extra CA certificates staged in docker/certs/ (a TLS-intercepting proxy's;
#   an empty folder adds none), and stops if one of them holds a private key;
# - installs uv, at the version requirements-dev.lock pins (the one pin of uv: the host's
#   venv gets the same one), in its own venv /opt/uv, which stays in the builder stage;
# - configures uv for image builds (/etc/uv/uv.toml): no cache, never download a Python,
#   copy files into the venv, trust the system's certificates.
set -eu
# Public certificates only: a private key there would end up in the image (the runtime
# stage keeps the builder's trust store), so the build stops.
if grep -rl 'PRIVATE KEY' /usr/local/share/ca-certificates/extra/; then
  echo "docker/certs/: the file(s) above hold a private key; only public CA certificates belong there" >&2
  exit 1
fi
update-ca-certificates
python3 -m venv /opt/uv
PIP_CERT=/etc/ssl/certs/ca-certificates.crt /opt/uv/bin/pip install --quiet --no-cache-dir \
  --disable-pip-version-check -c /opt/builder/requirements-dev.lock uv
mkdir -p /etc/uv
printf '%s\n' 'no-cache = true' 'python-downloads = "never"' 'link-mode = "copy"' \
  'system-certs = true' > /etc/uv/uv.toml
/opt/uv/bin/uv --version
