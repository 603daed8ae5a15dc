#!/usr/bin/env bash
# Create the Terraform state bucket of an environment, once per account:
#   scripts/bootstrap_state.sh dev|prod
# Reads bucket and region from network/envs/ENV.s3.tfbackend (services uses the same bucket,
# other key). Idempotent: an existing bucket of this account is brought to the same settings.
# Versioning on, SSE-KMS (aws/s3 key) by default with bucket key, public access blocked,
# BucketOwnerEnforced, TLS-only bucket policy, non-current versions kept 90 days.
# State locking needs nothing more: use_lockfile = true writes <key>.tflock in this bucket.
set -euo pipefail
ENV=${1:-}
case "$ENV" in dev | prod) ;; *) echo "usage: scripts/bootstrap_state.sh dev|prod" >&2; exit 2 ;; esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$REPO/.venv/bin/python
[[ -x $PY ]] || PY=python3
for v in $(compgen -e | grep '^AWS_ENDPOINT_URL' || true); do unset "$v"; done
exec "$PY" "$REPO/scripts/bootstrap_state.py" "$REPO/network/envs/$ENV.s3.tfbackend"
