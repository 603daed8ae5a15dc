#!/usr/bin/env bash
# Terraform wrapper: scripts/tf.sh ROOT ENV CMD [extra terraform args]
#   ROOT = network | services      ENV = local | dev | prod
#   CMD  = init | plan | apply | destroy | output | validate
#
# - Provider: when the hashicorp/aws filesystem mirror is on disk (TF_PLUGIN_MIRROR, /opt/tf-plugins,
#   else a search), writes a CLI config with provider_installation { filesystem_mirror } and points
#   TF_CLI_CONFIG_FILE at it; otherwise Terraform uses the registry as usual.
# - State: one S3 backend per root; settings from ROOT/envs/ENV.s3.tfbackend. The local environment
#   keeps its state in a bucket on the emulator (created here), so stopping the emulator forgets it.
# - TF_DATA_DIR=ROOT/.terraform/ENV: local and dev/prod inits never clobber each other.
# - local: emulator endpoint from AWS_ENDPOINT_URL (default http://127.0.0.1:4566), dummy credentials,
#   apply/destroy without prompting. dev/prod: every AWS_ENDPOINT_URL* variable is unset so nothing
#   is silently sent to an emulator.
# - services: builds the processor zip (into TF_DATA_DIR, so concurrent applies of different
#   environments never rebuild each other's zip mid-apply) before plan/apply/destroy; for dev/prod
#   also the dependency layer (scripts/package_lambda.py --layer, needs PyPI; rebuilt only when
#   requirements/processor-layer.txt changes; STOCKSAGE_LAYER_ZIP=path uses a prebuilt one) and
#   passes network_state (where the network root's state is): services reads the collector's
#   subnets from it with terraform_remote_state.
# - dev/prod: checks AWS credentials (sts get-caller-identity), the state bucket
#   <project>-<env>-tfstate-<account id> (scripts/bootstrap_state.py state_bucket_name) and, for
#   services, the network state first, and stops with a clear message (exit 3) instead of a
#   provider stack trace or a plan without the collector's network.
set -euo pipefail

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -ge 3 ]] || usage
ROOT=$1 ENV=$2 CMD=$3
shift 3
case "$ROOT" in network | services) ;; *) echo "tf.sh: unknown ROOT '$ROOT'" >&2 && usage ;; esac
case "$ENV" in local | dev | prod) ;; *) echo "tf.sh: unknown ENV '$ENV'" >&2 && usage ;; esac
case "$CMD" in init | plan | apply | destroy | output | validate) ;; *) echo "tf.sh: unknown CMD '$CMD'" >&2 && usage ;; esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT_DIR=$REPO/$ROOT
TF=${TERRAFORM:-terraform}
PY=$REPO/.venv/bin/python
[[ -x $PY ]] || PY=python3
command -v "$TF" >/dev/null || { echo "tf.sh: terraform not found on PATH" >&2; exit 127; }

export TF_IN_AUTOMATION=1
export TF_INPUT=0
# STOCKSAGE_TF_DATA_SUFFIX gives a second working dir (the integration tests use their own).
export TF_DATA_DIR=$ROOT_DIR/.terraform/$ENV${STOCKSAGE_TF_DATA_SUFFIX:+-$STOCKSAGE_TF_DATA_SUFFIX}
[[ $CMD == validate ]] && export TF_DATA_DIR=$ROOT_DIR/.terraform/validate
mkdir -p "$TF_DATA_DIR"

# --- provider installation ------------------------------------------------------------------
find_mirror() {
  local c
  for c in "${TF_PLUGIN_MIRROR:-}" /opt/tf-plugins /usr/share/terraform/plugins \
    "$HOME/.terraform.d/plugins" /usr/local/share/terraform/plugins; do
    [[ -n $c && -d $c/registry.terraform.io/hashicorp/aws ]] && { echo "$c"; return; }
  done
  # Slow fallback: <mirror>/registry.terraform.io/hashicorp/aws/<ver>/<os_arch>/terraform-provider-aws_*
  c=$(find / -xdev -path '*/registry.terraform.io/hashicorp/aws/*' -name 'terraform-provider-aws_*' \
    -not -path '*/.terraform/*' 2>/dev/null | head -n 1 || true)
  [[ -n $c ]] && echo "${c%/registry.terraform.io/*}"
  return 0
}
MIRROR=$(find_mirror)
if [[ -n $MIRROR ]]; then
  export TF_CLI_CONFIG_FILE=$TF_DATA_DIR/terraformrc
  cat >"$TF_CLI_CONFIG_FILE" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
CFG
elif [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -f ${TF_CLI_CONFIG_FILE} ]]; then
  unset TF_CLI_CONFIG_FILE # a dangling setting only produces warnings
fi

# --- environment ----------------------------------------------------------------------------
BACKEND_FILE=$ROOT_DIR/envs/$ENV.s3.tfbackend
VAR_FILES=(-var-file="$ROOT_DIR/envs/$ENV.tfvars")
if [[ $ENV == local && $CMD != validate ]]; then
  ENDPOINT=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
  ENDPOINT=${ENDPOINT%/}
  export TF_VAR_aws_endpoint_url=$ENDPOINT
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
  export AWS_REGION=${AWS_REGION:-us-east-1}
  # Backend settings + the emulator endpoint, in a file of this data dir.
  GENERATED=$TF_DATA_DIR/backend.s3.tfbackend
  { cat "$BACKEND_FILE"; printf 'endpoints = { s3 = "%s" }\n' "$ENDPOINT"; } >"$GENERATED.new"
  BACKEND_FILE=$GENERATED
else
  unset TF_VAR_aws_endpoint_url
  for v in $(compgen -e | grep '^AWS_ENDPOINT_URL' || true); do unset "$v"; done
  GENERATED=$TF_DATA_DIR/backend.s3.tfbackend
fi

ensure_local_state_bucket() {
  local bucket
  bucket=$(sed -n 's/^bucket *= *"\(.*\)"/\1/p' "$ROOT_DIR/envs/local.s3.tfbackend")
  # Idempotent: "already owned by you" is fine. Plain HTTP PUT works on moto and LocalStack.
  if ! curl -sf -o /dev/null --max-time 10 -X PUT "$ENDPOINT/$bucket" &&
    ! curl -sf -o /dev/null --max-time 10 -I "$ENDPOINT/$bucket"; then
    echo "tf.sh: cannot reach the emulator at $ENDPOINT to keep local state there (is it running?)" >&2
    exit 1
  fi
}

tf_init() {
  local args=(-chdir="$ROOT_DIR" init -input=false -reconfigure "$@")
  [[ $ENV == local ]] && ensure_local_state_bucket
  mv -f "$GENERATED.new" "$GENERATED"
  "$TF" "${args[@]}" -backend-config="$GENERATED"
}

# Local: (re)initialise when never done or when the endpoint changed; cheap and keeps state on
# the emulator that is running now.
# The root's module calls and required providers: when they change, init must run again.
init_fingerprint() {
  cat "$ROOT_DIR"/*.tf | grep -E '^\s*(source|version)\s*=' | sort | cksum
}

ensure_init() {
  local fingerprint stale=0
  fingerprint=$(init_fingerprint)
  [[ -f $TF_DATA_DIR/terraform.tfstate && $(cat "$TF_DATA_DIR/init.fingerprint" 2>/dev/null) == "$fingerprint" ]] || stale=1
  if ((stale)) || ! cmp -s "$GENERATED.new" "$GENERATED" 2>/dev/null; then
    if [[ $ENV == local ]]; then tf_init >/dev/null; else tf_init; fi
  else
    [[ $ENV == local ]] && ensure_local_state_bucket
    rm -f "$GENERATED.new"
  fi
  echo "$fingerprint" >"$TF_DATA_DIR/init.fingerprint"
}

network_state_var_file() {
  # dev/prod services: where the network root's state is (services reads it with
  # terraform_remote_state; check_aws_access has verified that it exists).
  local out=$TF_DATA_DIR/network-state.auto.tfvars.json region
  region=$(sed -n 's/^region *= *"\(.*\)"/\1/p' "$REPO/network/envs/$ENV.s3.tfbackend")
  printf '{"network_state": {"bucket": "%s", "key": "%s", "region": "%s"}}\n' \
    "$STATE_BUCKET" "$(sed -n 's/^key *= *"\(.*\)"/\1/p' "$REPO/network/envs/$ENV.s3.tfbackend")" \
    "$region" >"$out"
  echo "$out"
}

build_zip() {
  [[ $ROOT == services ]] || return 0
  local zip=$TF_DATA_DIR/processor.zip
  "$PY" "$REPO/scripts/package_lambda.py" --out "$zip" >&2
  export TF_VAR_processor_zip=$zip
  [[ $ENV == local ]] && return 0
  local layer=${STOCKSAGE_LAYER_ZIP:-$TF_DATA_DIR/processor-layer.zip}
  local reqs=$REPO/requirements/processor-layer.txt stamp=$TF_DATA_DIR/processor-layer.stamp
  if [[ -z ${STOCKSAGE_LAYER_ZIP:-} ]] && { [[ ! -f $layer ]] || ! cmp -s "$reqs" "$stamp"; }; then
    echo "tf.sh: building the dependency layer (pip, manylinux x86_64, CPython 3.12)..." >&2
    "$PY" "$REPO/scripts/package_lambda.py" --layer --out "$layer" >&2
    cp "$reqs" "$stamp"
  fi
  export TF_VAR_processor_layer_zip=$layer
}

# dev/prod: fail early and clearly without credentials, without the state bucket, or (services)
# without the network state. Prints the state bucket name on stdout.
check_aws_access() {
  local region network_key=""
  region=$(sed -n 's/^region *= *"\(.*\)"/\1/p' "$BACKEND_FILE")
  [[ $ROOT == services ]] && network_key=$(sed -n 's/^key *= *"\(.*\)"/\1/p' "$REPO/network/envs/$ENV.s3.tfbackend")
  "$PY" - "$ENV" "$region" "$network_key" "$REPO" <<'PYCHECK' || exit 3
import os
import sys

env, region, network_key, repo = sys.argv[1:5]
try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
except ImportError:
    print("tf.sh: boto3 is missing (make install): cannot find the state bucket", file=sys.stderr)
    sys.exit(1)
sys.path.insert(0, os.path.join(repo, "scripts"))
from bootstrap_state import state_bucket_name  # noqa: E402

try:
    session = boto3.Session(region_name=region)
    identity = session.client("sts").get_caller_identity()
except NoCredentialsError:
    print(f"tf.sh: no AWS credentials for ENV={env}. Set AWS_PROFILE (after 'aws sso login' or "
          "'aws configure'), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then retry. Nothing was "
          "planned or changed. (The local stack needs none: make up.)", file=sys.stderr)
    sys.exit(1)
except (ClientError, BotoCoreError) as exc:
    print(f"tf.sh: AWS credentials for ENV={env} do not work: {exc}", file=sys.stderr)
    sys.exit(1)
bucket = state_bucket_name(env, identity["Account"], os.environ.get("STOCKSAGE_STATE_BUCKET"))
s3 = session.client("s3")
try:
    s3.head_bucket(Bucket=bucket)
except ClientError as exc:
    code = exc.response.get("Error", {}).get("Code", "")
    hint = (f"create it once with: make bootstrap-state ENV={env}") if code in ("404", "NoSuchBucket") \
        else "check that this account/role may use it"
    print(f"tf.sh: state bucket {bucket!r} is not usable from account {identity['Account']} "
          f"({code or exc}): {hint}", file=sys.stderr)
    sys.exit(1)
if network_key:
    try:
        s3.head_object(Bucket=bucket, Key=network_key)
    except ClientError as exc:
        print(f"tf.sh: no network state s3://{bucket}/{network_key} "
              f"({exc.response.get('Error', {}).get('Code', exc)}): the services root reads the "
              f"collector's subnets from it. Apply the network first: scripts/tf.sh network {env} "
              "apply. Nothing was planned or changed.", file=sys.stderr)
        sys.exit(1)
print(f"tf.sh: ENV={env} account {identity['Account']} as {identity['Arn']}, state {bucket}",
      file=sys.stderr)
print(bucket)
PYCHECK
}

STATE_BUCKET=
if [[ $ENV != local && $CMD != validate ]]; then
  STATE_BUCKET=$(check_aws_access)
  { cat "$BACKEND_FILE"; printf 'bucket = "%s"\n' "$STATE_BUCKET"; } >"$GENERATED.new"
fi

case "$CMD" in
  init)
    tf_init "$@"
    ;;
  validate)
    "$TF" -chdir="$ROOT_DIR" init -input=false -backend=false >/dev/null
    "$TF" -chdir="$ROOT_DIR" validate "$@"
    ;;
  output)
    ensure_init
    "$TF" -chdir="$ROOT_DIR" output "$@"
    ;;
  plan | apply | destroy)
    ensure_init
    build_zip
    [[ $ROOT == services && $ENV != local ]] && VAR_FILES+=(-var-file="$(network_state_var_file)")
    extra=()
    [[ $ENV == local && $CMD != plan ]] && extra+=(-auto-approve)
    "$TF" -chdir="$ROOT_DIR" "$CMD" -input=false "${VAR_FILES[@]}" "${extra[@]}" "$@"
    ;;
esac
