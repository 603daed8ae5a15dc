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
# - services: builds the processor zip before plan/apply/destroy; for dev/prod passes the network
#   root's outputs (private_subnet_ids, collector_security_group_ids) when that state has them.
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
  if [[ $ENV == local ]]; then
    ensure_local_state_bucket
    mv -f "$GENERATED.new" "$GENERATED"
  fi
  "$TF" "${args[@]}" -backend-config="$BACKEND_FILE"
}

# Local: (re)initialise when never done or when the endpoint changed; cheap and keeps state on
# the emulator that is running now.
ensure_init() {
  if [[ $ENV == local ]]; then
    if [[ ! -f $TF_DATA_DIR/terraform.tfstate ]] || ! cmp -s "$GENERATED.new" "$GENERATED" 2>/dev/null; then
      tf_init >/dev/null
    else
      ensure_local_state_bucket
      rm -f "$GENERATED.new"
    fi
  elif [[ ! -f $TF_DATA_DIR/terraform.tfstate ]]; then
    tf_init
  fi
}

network_var_file() {
  # dev/prod services: network outputs -> variables (only those the network state has).
  local net_dir=$REPO/network net_data=$REPO/network/.terraform/$ENV out=$TF_DATA_DIR/network.auto.tfvars.json
  [[ -f $net_data/terraform.tfstate ]] || return 0
  TF_DATA_DIR=$net_data "$TF" -chdir="$net_dir" output -json 2>/dev/null | "$PY" -c '
import json, sys
try:
    outputs = json.load(sys.stdin)
except ValueError:
    outputs = {}
mapping = {"private_subnet_ids": "private_subnet_ids", "collector_security_group_id": "collector_security_group_ids"}
values = {}
for src, dst in mapping.items():
    if src in outputs:
        v = outputs[src]["value"]
        values[dst] = v if isinstance(v, list) else [v]
json.dump(values, open(sys.argv[1], "w"), indent=2)
print(sys.argv[1] if values else "")
' "$out"
}

build_zip() {
  [[ $ROOT == services ]] || return 0
  local zip=$REPO/build/lambda/processor.zip
  "$PY" "$REPO/scripts/package_lambda.py" --out "$zip" >&2
  export TF_VAR_processor_zip=$zip
}

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
    if [[ $ROOT == services && $ENV != local ]]; then
      nv=$(network_var_file)
      [[ -n $nv ]] && VAR_FILES+=(-var-file="$nv")
    fi
    extra=()
    [[ $ENV == local && $CMD != plan ]] && extra+=(-auto-approve)
    "$TF" -chdir="$ROOT_DIR" "$CMD" -input=false "${VAR_FILES[@]}" "${extra[@]}" "$@"
    ;;
esac
