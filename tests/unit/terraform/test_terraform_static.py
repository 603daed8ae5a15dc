"""Static checks of the Terraform code (no cloud, no emulator).

The HCL is parsed once per session with python-hcl2 (the first parse of a session builds the
grammar cache and can take ~16 s). The last tests run ``terraform fmt -check`` and
``terraform validate`` for each root through ``scripts/tf.sh`` (provider from the filesystem
mirror when present); they are skipped only when terraform is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ROOTS = ("services", "network")
MODULES = tuple(sorted(p.name for p in (REPO / "modules").iterdir() if p.is_dir()))
ENVS = ("local", "dev", "prod")
STACK = json.loads((REPO / "stocksage" / "stack.json").read_text())

hcl2 = pytest.importorskip("hcl2")


def _tf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.tf") if ".terraform" not in p.parts)


@cache
def parsed(path: Path) -> dict:
    """Parse one .tf/.tfvars file into plain values (cached for the session)."""
    options = hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=options)


def blocks(directory: Path, kind: str) -> list[dict]:
    """All top-level blocks of one kind (resource, module, variable, ...) in a directory."""
    found: list[dict] = []
    for path in _tf_files(directory):
        found.extend(parsed(path).get(kind, []))
    return found


def named(directory: Path, kind: str, name: str) -> dict:
    for block in blocks(directory, kind):
        if name in block:
            return block[name]
    raise AssertionError(f"no {kind} {name!r} in {directory}")


def resource(directory: Path, rtype: str, name: str) -> dict:
    for block in blocks(directory, "resource"):
        if rtype in block and name in block[rtype]:
            return block[rtype][name]
    raise AssertionError(f"no resource {rtype}.{name} in {directory}")


def code_lines(path: Path) -> list[str]:
    """Lines of a Terraform file without comment lines."""
    return [
        line for line in path.read_text().splitlines() if not line.lstrip().startswith(("#", "//"))
    ]


def design_environment() -> set[str]:
    """Environment variable names the processor reads, as listed in docs/DESIGN.md."""
    text = (REPO / "docs" / "DESIGN.md").read_text()
    start = text.index("Environment (set by Terraform")
    paragraph = text[start : text.index("\n\n", start)]
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", paragraph))


# --- layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [*ROOTS, *(f"modules/{m}" for m in MODULES)])
def test_every_root_and_module_has_the_standard_files(directory: str) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (REPO / directory / name).is_file(), f"{directory}/{name} missing"


@pytest.mark.parametrize("directory", [*ROOTS, *(f"modules/{m}" for m in MODULES)])
def test_every_variable_is_typed_and_described(directory: str) -> None:
    for block in blocks(REPO / directory, "variable"):
        for name, body in block.items():
            assert "type" in body, f"{directory}: variable {name} has no type"
            assert body.get("description"), f"{directory}: variable {name} has no description"
    for block in blocks(REPO / directory, "output"):
        for name, body in block.items():
            assert body.get("description"), f"{directory}: output {name} has no description"


@pytest.mark.parametrize("root", ROOTS)
def test_roots_have_thin_environments(root: str) -> None:
    for env in ENVS:
        assert (REPO / root / "envs" / f"{env}.tfvars").is_file()
        backend = (REPO / root / "envs" / f"{env}.s3.tfbackend").read_text()
        assert re.search(r"^use_lockfile\s*=\s*true", backend, re.MULTILINE), (
            f"{root}/{env}: no lockfile"
        )
        assert re.search(rf'^key\s*=\s*"{root}/terraform.tfstate"', backend, re.MULTILINE)
    terraform_blocks = blocks(REPO / root, "terraform")
    backends = [b for t in terraform_blocks for b in t.get("backend", [])]
    assert len(backends) == 1 and "s3" in backends[0], "one S3 backend per root"
    # Environments are data, never copies of code.
    assert not list((REPO / root / "envs").glob("*.tf"))


@pytest.mark.parametrize("root", ROOTS)
def test_lock_file_pins_the_aws_provider(root: str) -> None:
    lock = (REPO / root / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert re.search(r'version\s*=\s*"5\.100\.0"', lock)
    providers = {m.group(1) for m in re.finditer(r'provider "([^"]+)"', lock)}
    assert providers == {"registry.terraform.io/hashicorp/aws"}, "only hashicorp/aws is mirrored"
    # h1 of the mirrored linux_amd64 package, and the registry's zip checksums (zh) of every
    # platform release (linux/darwin amd64+arm64 among them): init verifies downloads on any
    # of those platforms (README "Provider lock file").
    assert len(re.findall(r'"h1:[A-Za-z0-9+/=]{44}"', lock)) >= 1
    assert len(set(re.findall(r'"zh:([0-9a-f]{64})"', lock))) == 15
    assert lock == (REPO / "services" / ".terraform.lock.hcl").read_text(), "roots share one lock"


# --- names come from stack.json -------------------------------------------------------------


@pytest.mark.parametrize("root", ROOTS)
def test_roots_read_stack_json(root: str) -> None:
    local_blocks = blocks(REPO / root, "locals")
    stack_expr = next(b["stack"] for b in local_blocks if "stack" in b)
    assert "jsondecode(file(" in stack_expr and "../stocksage/stack.json" in stack_expr


def test_no_resource_name_is_written_out() -> None:
    project = STACK["project"]
    files = [p for d in (*ROOTS, "modules") for p in (REPO / d).rglob("*.tf")]
    files = [p for p in files if ".terraform" not in p.parts]
    for path in files:
        for line in code_lines(path):
            stripped = line.replace("../stocksage/stack.json", "")
            assert project not in stripped, (
                f"{path.relative_to(REPO)}: literal name: {line.strip()}"
            )
            for short in STACK["resources"].values():
                assert not re.search(rf"-(local|dev|prod)-{re.escape(short)}\b", stripped), (
                    f"{path.relative_to(REPO)}: hard-coded resource name: {line.strip()}"
                )


def test_every_stack_resource_is_named_from_locals() -> None:
    text = "\n".join("\n".join(code_lines(p)) for p in _tf_files(REPO / "services"))
    tables = {k for k in STACK["resources"] if k.endswith("_table")}
    for key in STACK["resources"]:
        if key in tables:
            assert re.search(rf"^\s*{key}\s*=\s*\{{", text, re.MULTILINE), (
                f"table {key} not in local.tables"
            )
        else:
            assert f"local.names.{key}" in text, f"{key} is not named from stack.json"
    assert "local.names[each.key]" in text


def test_tables_use_the_keys_of_stack_json_and_the_ttl_contract() -> None:
    tables_local = next(b["tables"] for b in blocks(REPO / "services", "locals") if "tables" in b)
    text = json.dumps(tables_local)
    for table, keys in STACK["keys"].items():
        for role in keys:
            assert f"local.keys.{table}.{role}" in text, f"{table}.{role} not from stack.json"
    main = (REPO / "services" / "main.tf").read_text()
    assert re.search(r'ttl_attribute\s*=\s*"expires_at"', main)
    assert re.search(r'ttl_attribute\s*=\s*"expiration"', main)
    table = resource(REPO / "modules" / "dynamodb_table", "aws_dynamodb_table", "this")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert "var.point_in_time_recovery" in json.dumps(table["point_in_time_recovery"])
    assert "var.kms_key_arn" in json.dumps(table["server_side_encryption"])


# --- processor contract ---------------------------------------------------------------------


def test_processor_environment_is_exactly_the_design_list() -> None:
    processor = named(REPO / "services", "module", "processor")
    env = processor["environment_variables"]
    assert set(env) == design_environment()
    assert "aws_sns_topic.alerts.arn" in env["ALERTS_TOPIC_ARN"]
    assert "module.failures_queue.url" in env["FAILURE_QUEUE_URL"]
    assert "local.names.endpoint" in env["ENDPOINT_NAME"]
    for var, key in (
        ("RESULTS_TABLE", "results_table"),
        ("STATE_TABLE", "state_table"),
        ("RULES_TABLE", "rules_table"),
        ("IDEMPOTENCY_TABLE", "idempotency_table"),
    ):
        assert key in env[var], f"{var} must come from the {key} table"


def test_processor_handler_and_runtime() -> None:
    processor = named(REPO / "services", "module", "processor")
    assert processor["handler"] == "lambdas.processor.lambda_handler"
    assert processor["runtime"] == "python3.12"
    handler_file = REPO / "lambdas" / "processor.py"
    if handler_file.exists():
        assert re.search(r"^def lambda_handler\(", handler_file.read_text(), re.MULTILINE)


def test_processor_permissions_are_exact() -> None:
    processor = named(REPO / "services", "module", "processor")
    statements = processor["policy_statements"]
    actions = {a for s in statements.values() for a in s["actions"]}
    assert not any("*" in a for a in actions), "no wildcard actions"
    assert "sagemaker:InvokeEndpoint" in actions and "sns:Publish" in actions
    for statement in statements.values():
        for res in statement["resources"]:
            assert res != "*", "no wildcard resources"
    module = (REPO / "modules" / "lambda_function" / "main.tf").read_text()
    assert '"kms:Decrypt", "kms:GenerateDataKey"' in module


def test_event_source_mapping_contract() -> None:
    processor = named(REPO / "services", "module", "processor")
    (source,) = processor["kinesis_event_sources"].values()
    assert source["starting_position"] == "TRIM_HORIZON"
    assert source["bisect_batch_on_function_error"] is True
    assert "module.failures_queue.arn" in source["on_failure_destination_arn"]
    for key in (
        "batch_size",
        "maximum_batching_window_in_seconds",
        "parallelization_factor",
        "maximum_retry_attempts",
        "maximum_record_age_in_seconds",
    ):
        assert str(source[key]).startswith("${var."), f"{key} must be a variable"
    esm = resource(
        REPO / "modules" / "lambda_function", "aws_lambda_event_source_mapping", "kinesis"
    )
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert "destination_config" in json.dumps(esm.get("dynamic", []))
    # Retries and record age are bounded in the root's validations.
    variables = {k: v for b in blocks(REPO / "services", "variable") for k, v in b.items()}
    assert variables["esm_maximum_retry_attempts"]["default"] == 3
    assert "<= 10" in json.dumps(variables["esm_maximum_retry_attempts"]["validation"])
    assert "<= 604800" in json.dumps(variables["esm_maximum_record_age_seconds"]["validation"])


def test_local_environment_values() -> None:
    local = parsed(REPO / "services" / "envs" / "local.tfvars")
    assert local["environment"] == "local"
    assert local["create_local_alerts_queue"] is True
    assert local["processor_layers"] == []
    assert local["esm_batch_size"] == 100 and local["esm_maximum_batching_window_seconds"] == 1
    for env in ("dev", "prod"):
        values = parsed(REPO / "services" / "envs" / f"{env}.tfvars")
        assert values["environment"] == env
        assert values.get("create_local_alerts_queue", False) is False
        assert "aws_endpoint_url" not in values
    subscription = resource(REPO / "services", "aws_sns_topic_subscription", "alerts_inbox")
    assert subscription["raw_message_delivery"] is False
    assert parsed(REPO / "services" / "envs" / "prod.tfvars")["endpoint_instance_type"].startswith(
        "ml."
    )


def test_provider_endpoints_follow_one_variable() -> None:
    for root in ROOTS:
        text = (REPO / root / "providers.tf").read_text()
        body = text[text.index("endpoints {") : text.index("}", text.index("endpoints {"))]
        entries = re.findall(r"^\s*(\w+)\s*=\s*(\S+)\s*$", body, re.MULTILINE)
        assert entries and all(value == "var.aws_endpoint_url" for _, value in entries)
        for flag in (
            "skip_credentials_validation",
            "skip_metadata_api_check",
            "skip_requesting_account_id",
            "s3_use_path_style",
        ):
            assert re.search(rf"{flag}\s*=\s*local\.is_local", text), f"{root}: {flag}"


# --- packaging ------------------------------------------------------------------------------


def test_lambda_package_is_reproducible(tmp_path: Path) -> None:
    if not (REPO / "lambdas").is_dir():
        pytest.skip("lambdas/ not present yet")
    script = REPO / "scripts" / "package_lambda.py"
    outs = []
    for name in ("a.zip", "b.zip"):
        result = subprocess.run(
            [sys.executable, str(script), "--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=True,
        )
        outs.append(json.loads(result.stdout))
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert outs[0]["base64sha256"] == outs[1]["base64sha256"]
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())
    assert "lambdas/processor.py" in names and "stocksage/stack.json" in names
    assert not any(n.startswith("stocksage/local/") or n.endswith(".pyc") for n in names)


# --- terraform itself -----------------------------------------------------------------------

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")


@needs_terraform
def test_terraform_fmt() -> None:
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", *ROOTS, "modules"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, f"terraform fmt -check failed:\n{result.stdout}{result.stderr}"


@needs_terraform
@pytest.mark.parametrize("root", ROOTS)
def test_terraform_validate(root: str) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "tf.sh"), root, "local", "validate", "-no-color"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"validate {root}:\n{result.stdout}{result.stderr}"
    assert "The configuration is valid" in result.stdout


@needs_terraform
def test_services_terraform_tests(tmp_path) -> None:
    """``terraform test`` of services/ (services/tests/*.tftest.hcl, a mock AWS provider, no
    network): on a fresh account the dev apply stops before CreateEndpoint while the first
    model artifact is missing, naming the next step, and creates the endpoint once it exists.
    Encodes what the emulator hides (moto creates an endpoint without an artifact)."""
    init = subprocess.run(["bash", str(REPO / "scripts" / "tf.sh"), "services", "local",
                           "validate", "-no-color"], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    data_dir = REPO / "services" / ".terraform" / "validate"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "TF_DATA_DIR": str(data_dir), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    if (data_dir / "terraformrc").is_file():
        env["TF_CLI_CONFIG_FILE"] = str(data_dir / "terraformrc")
    package = tmp_path / "processor.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: nothing is uploaded
    result = subprocess.run([TERRAFORM, "test", "-no-color", "-var-file=envs/dev.tfvars",
                             f"-var=processor_zip={package}"], cwd=REPO / "services",
                            env=env, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 0 failed" in result.stdout


# --- module examples: every module has a root that calls it, and it validates -------------------

#: Where scripts/tf.sh looks for the hashicorp/aws filesystem mirror (its slow search aside).
MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins",
                     str(Path.home() / ".terraform.d" / "plugins"),
                     "/usr/local/share/terraform/plugins")


def example_roots(module: str) -> list[Path]:
    return sorted(p.parent for p in (REPO / "modules" / module / "examples").glob("*/main.tf"))


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_an_example_root_that_calls_it(module: str) -> None:
    roots = example_roots(module)
    assert roots, f"modules/{module}/examples/<name>/main.tf missing"
    for root in roots:
        text = "\n".join(code_lines(root / "main.tf"))
        assert re.search(r'^\s*source\s*=\s*"\.\./\.\."\s*$', text, re.MULTILINE), (
            f"{root.relative_to(REPO)}: does not call the module (source = \"../..\")")
        assert 'provider "aws"' in text, f"{root.relative_to(REPO)}: no provider block"
        versions = (root / "versions.tf").read_text()
        assert "required_version" in versions and '"hashicorp/aws"' in versions
        assert not list(root.glob("*.tfvars")), "examples run with their defaults"


@pytest.fixture(scope="session")
def examples_workspace(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of modules/ (init never writes into the repository) and one Terraform environment
    for every example: the provider from the filesystem mirror when there is one (as
    scripts/tf.sh does), else a plugin cache shared by the examples of the session."""
    work = tmp_path_factory.mktemp("module-examples")
    skip = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    shutil.copytree(REPO / "modules", work / "modules", ignore=skip)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    candidates = [os.environ.get("TF_PLUGIN_MIRROR", ""), *MIRROR_CANDIDATES]
    mirror = next((c for c in candidates if c and
                   (Path(c) / "registry.terraform.io" / "hashicorp" / "aws").is_dir()), None)
    if mirror:
        rc = work / "terraformrc"
        rc.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n')
        env["TF_CLI_CONFIG_FILE"] = str(rc)
    else:
        cache = work / "plugin-cache"
        cache.mkdir()
        env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    return work, env


@needs_terraform
@pytest.mark.parametrize("module", MODULES)
def test_module_examples_init_and_validate(module: str, examples_workspace) -> None:
    work, env = examples_workspace
    roots = example_roots(module)
    assert roots, f"modules/{module} has no example"
    for root in roots:
        copy = work / root.relative_to(REPO)
        run_env = {**env, "TF_DATA_DIR": str(copy / ".terraform")}
        for args in (["init", "-backend=false", "-input=false", "-no-color"],
                     ["validate", "-no-color"]):
            result = subprocess.run([TERRAFORM, *args], cwd=copy, env=run_env, check=False,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (
                f"{root.relative_to(REPO)}: terraform {args[0]}:\n{result.stdout}{result.stderr}")
        assert "The configuration is valid" in result.stdout


def test_wrapper_rejects_unknown_arguments() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "tf.sh"), "services", "staging", "plan"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown ENV" in result.stderr


# --- idle cost: dev under budget without weakening prod ---------------------------------------


def test_idle_dev_stack_costs_at_most_25_dollars_and_prod_keeps_private_subnets() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import cost
    finally:
        sys.path.remove(str(REPO / "scripts"))
    dev = cost.load_env("dev")
    assert sum(cost.estimate(dev, 0).values()) <= 25.0
    assert dev.nat_mode == "none" and dev.collector_public_ip
    prod = cost.load_env("prod")
    assert prod.nat_mode == "per_az" and not prod.collector_public_ip and prod.endpoints == 5
    # The alarm count is read from services/observability.tf, not assumed.
    text = (REPO / "services" / "observability.tf").read_text()
    assert prod.alarms == text.count("namespace   =") >= 14


def test_collector_network_comes_from_the_network_state() -> None:
    collector = (REPO / "services" / "collector.tf").read_text()
    assert 'data "terraform_remote_state" "network"' in collector
    assert "postcondition" in collector and "collector_subnet_ids" in collector
    outputs = {k for b in blocks(REPO / "network", "output") for k in b}
    assert {"collector_subnet_ids", "collector_assign_public_ip",
            "collector_security_group_id"} <= outputs
    wrapper = (REPO / "scripts" / "tf.sh").read_text()
    assert "network_var_file" not in wrapper and "no network state" in wrapper
    for env in ("dev", "prod"):
        backend = (REPO / "services" / "envs" / f"{env}.s3.tfbackend").read_text()
        assert not re.search(r"^bucket\s*=", backend, re.MULTILINE), "state bucket is per account"


def test_shared_root_variables_are_written_once() -> None:
    for root in ROOTS:
        link = REPO / root / "root_common.tf"
        assert link.is_symlink() and link.resolve() == (REPO / "shared" / "root_common.tf")
        own = {k for b in parsed(REPO / root / "variables.tf").get("variable", []) for k in b}
        assert not own & {"environment", "aws_region", "aws_endpoint_url", "tags"}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_readme_with_usage_and_current_tables(module: str) -> None:
    readme = (REPO / "modules" / module / "README.md").read_text()
    assert "## Usage" in readme and f'source = "../modules/{module}"' in readme
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import module_docs
    finally:
        sys.path.remove(str(REPO / "scripts"))
    generated = module_docs.render(REPO / "modules" / module)
    assert generated in readme, (
        f"modules/{module}/README.md is stale: python scripts/module_docs.py")
    for block in blocks(REPO / "modules" / module, "variable"):
        for name in block:
            assert f"| {name} |" in readme


def test_bucket_names_are_unique_per_account_and_region() -> None:
    main = (REPO / "services" / "main.tf").read_text()
    assert re.search(r'bucket_suffix\s*=.*local\.account_id.*local\.region', main)
    history = named(REPO / "services", "module", "history_bucket")["bucket"]
    # The Athena bucket is created by modules/analytics under the name the root gives it.
    athena = named(REPO / "services", "module", "analytics")["athena_bucket_name"]
    assert named(REPO / "modules" / "analytics", "module", "athena_bucket")["bucket"] == (
        "${var.athena_bucket_name}")
    for bucket in (history, athena):
        assert "local.bucket_suffix" in bucket, bucket
