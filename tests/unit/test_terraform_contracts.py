"""Terraform held against the code: environment, IAM, keys, analytics schema, tfvars, wrappers.

Everything here is derived from the code (AST of lambdas/ and stocksage/adapters/, stack.json,
stocksage.history), not from hard-coded lists, except the small boto3-method -> IAM-action table.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

from stocksage.history import history_key

hcl2 = pytest.importorskip("hcl2")

REPO = Path(__file__).resolve().parents[2]
STACK = json.loads((REPO / "stocksage" / "stack.json").read_text())
TERRAFORM = shutil.which("terraform")


@cache
def parsed(path: Path) -> dict:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False,
                                        with_comments=False)
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=options)


def blocks(directory: Path, kind: str) -> dict:
    found: dict = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parsed(path).get(kind, []):
            found.update(block)
    return found


def resource(directory: Path, rtype: str, name: str) -> dict:
    for path in sorted(directory.glob("*.tf")):
        for block in parsed(path).get("resource", []):
            if rtype in block and name in block[rtype]:
                return block[rtype][name]
    raise AssertionError(f"no resource {rtype}.{name} in {directory}")


def first(value):
    return value[0] if isinstance(value, list) else value


def lambda_modules() -> dict[str, dict]:
    """Every services module call built from modules/lambda_function, by name."""
    return {name: body for name, body in blocks(REPO / "services", "module").items()
            if body.get("source") == "../modules/lambda_function"}


# --- environment variables: read by the code == set by Terraform ----------------------------

READERS = {"_require": True, "_int": False, "_float": False}


def settings_reads() -> dict[str, dict[str, bool]]:
    """{SettingsClass: {VAR: required}} from lambdas/settings.py (AST of each from_env)."""
    tree = ast.parse((REPO / "lambdas" / "settings.py").read_text())
    result: dict[str, dict[str, bool]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        reads: dict[str, bool] = {}
        for node in ast.walk(cls):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in READERS:
                reads[first.value] = reads.get(first.value, False) or READERS[func.id]
            elif (isinstance(func, ast.Attribute) and func.attr == "get"
                  and ast.unparse(func.value) == "os.environ"):
                reads.setdefault(first.value, False)
        if reads:
            result[cls.name] = reads
    return result


def handler_settings_class(handler: str) -> str | None:
    module = handler.rsplit(".", 1)[0]
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    found = re.findall(r"\b(\w+Settings)\.from_env\(", source)
    return found[0] if found else None


# Read by the libraries (Powertools Logger/Metrics/Tracer), not by settings.py.
RUNTIME_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL",
                     "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_TRACE_DISABLED"}


def test_settings_scan_finds_the_processor_contract():
    reads = settings_reads()["ProcessorSettings"]
    assert {v for v, required in reads.items() if required} >= {"RESULTS_TABLE", "ENDPOINT_NAME"}
    assert "WINDOW_BARS" in reads and reads["WINDOW_BARS"] is False


@pytest.mark.parametrize("name", sorted(lambda_modules()))
def test_every_variable_a_handler_requires_is_set_by_terraform(name):
    module = lambda_modules()[name]
    cls = handler_settings_class(module["handler"])
    assert cls, f"{module['handler']}: no *Settings.from_env() call"
    reads = settings_reads()[cls]
    env = set(module.get("environment_variables", {}))
    missing = sorted(v for v, required in reads.items() if required and v not in env)
    assert not missing, f"module.{name} ({cls}) does not set required {missing}"
    unused = sorted(env - set(reads) - RUNTIME_VARIABLES)
    assert not unused, f"module.{name} sets variables no code reads: {unused}"


# --- IAM: the processor's role allows exactly what its code calls ---------------------------

#: boto3 method (client, resource or Powertools utility) -> IAM actions. The only hand-written
#: part; a method used in the code and missing here fails test_every_aws_call_is_mapped.
METHOD_ACTIONS = {
    "batch_get_item": ["dynamodb:BatchGetItem"],
    "batch_writer": ["dynamodb:BatchWriteItem"],  # put_item on the writer is part of it
    "batch_write_item": ["dynamodb:BatchWriteItem"],
    "put_item": ["dynamodb:PutItem"],
    "update_item": ["dynamodb:UpdateItem"],
    # TransactWriteItems has no IAM action of its own: each Put needs dynamodb:PutItem.
    "transact_write_items": ["dynamodb:PutItem"],
    "get_item": ["dynamodb:GetItem"],
    "query": ["dynamodb:Query"],
    "scan": ["dynamodb:Scan"],
    "publish": ["sns:Publish"],
    "send_message": ["sqs:SendMessage"],
    "invoke_endpoint": ["sagemaker:InvokeEndpoint"],
    # Powertools Parameters get_multiple -> the provider's _get_multiple (a Scan of the table).
    # Powertools idempotency DynamoDBPersistenceLayer (put INPROGRESS, get, update COMPLETED,
    # delete on failure).
    "DynamoDBPersistenceLayer": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                 "dynamodb:DeleteItem"],
}
#: settings attribute suffix -> which Terraform resource it names, per service.
SERVICE_OF_ARG = {"_table": "dynamodb", "_topic_arn": "sns", "_queue_url": "sqs",
                  "endpoint_name": "sagemaker"}


def _adapter_classes() -> dict[str, ast.ClassDef]:
    classes = {}
    for path in (REPO / "stocksage" / "adapters").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
    return classes


def _adapter_functions() -> dict[str, ast.FunctionDef]:
    """Module-level helpers of the adapters (their AWS calls count for the classes using them)."""
    return {node.name: node for path in (REPO / "stocksage" / "adapters").glob("*.py")
            for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


def _calls_of(cls: ast.ClassDef | ast.FunctionDef, seen: frozenset[str] = frozenset()) -> set[str]:
    """AWS-relevant method names a class calls (writer.put_item inside batch_writer excluded)."""
    writers = {item.optional_vars.id for node in ast.walk(cls) if isinstance(node, ast.With)
               for item in node.items
               if isinstance(item.optional_vars, ast.Name)
               and isinstance(item.context_expr, ast.Call)
               and getattr(item.context_expr.func, "attr", "") == "batch_writer"}
    calls = set()
    for node in ast.walk(cls):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            if isinstance(func.value, ast.Name) and func.value.id in writers:
                continue
            calls.add(func.attr)
            if func.attr == "get_paginator" and node.args and isinstance(node.args[0],
                                                                         ast.Constant):
                calls.add(node.args[0].value)  # get_paginator("query") -> query
        elif isinstance(func, ast.Name):
            calls.add(func.id)
            helper = _adapter_functions().get(func.id) or _adapter_classes().get(func.id)
            if helper is not None and func.id not in seen:
                calls |= _calls_of(helper, seen | {func.id})
    return calls


def processor_needs() -> set[tuple[str, str]]:
    """{(action, settings attribute naming the resource)} derived from the processor code."""
    tree = ast.parse((REPO / "lambdas" / "processor.py").read_text())
    init = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                and n.name == "__init__")
    classes = _adapter_classes()
    needs: set[tuple[str, str]] = set()
    for call in (n for n in ast.walk(init) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", None)
        if name not in classes:
            continue
        args = {a.attr for a in ast.walk(call) if isinstance(a, ast.Attribute)
                and isinstance(a.value, ast.Name) and a.value.id == "settings"}
        for method in _calls_of(classes[name]):
            for action in METHOD_ACTIONS.get(method, []):
                service = action.split(":")[0]
                targets = [a for a in args for suffix, svc in SERVICE_OF_ARG.items()
                           if a.endswith(suffix) and svc == service]
                assert len(targets) == 1, f"{name}.{method}: cannot tell the {service} resource"
                needs.add((action, targets[0]))
    return needs


#: Terraform expression -> settings attribute it corresponds to.
RESOURCE_OF_EXPRESSION = {
    'module.tables["results_table"].arn': "results_table",
    'module.tables["state_table"].arn': "state_table",
    'module.tables["rules_table"].arn': "rules_table",
    'module.tables["idempotency_table"].arn': "idempotency_table",
    "aws_sns_topic.alerts.arn": "alerts_topic_arn",
    "aws_sqs_queue.failures.arn": "failure_queue_url",
    "local.endpoint_arn": "endpoint_name",
}


def processor_grants() -> set[tuple[str, str]]:
    statements = lambda_modules()["processor"]["policy_statements"]
    grants = set()
    for sid, statement in statements.items():
        for resource in statement["resources"]:
            key = RESOURCE_OF_EXPRESSION.get(resource.strip("${}"))
            assert key, f"{sid}: unknown resource expression {resource}"
            grants.update((action, key) for action in statement["actions"])
    return grants


def test_every_aws_call_is_mapped():
    aws_methods = {m for c in _adapter_classes().values() for m in _calls_of(c)
                   if re.fullmatch(r"(batch_|put_|get_|query|publish|send_|invoke_|"
                                   r"delete_|update_|scan)\w*", m)}
    used_by_processor = {"batch_get_item", "batch_write_item", "transact_write_items",
                         "update_item",
                         "query", "scan", "publish", "send_message", "invoke_endpoint"}
    assert used_by_processor <= set(METHOD_ACTIONS)
    assert aws_methods  # the scan sees the adapters' calls


def test_processor_role_allows_exactly_what_the_code_calls():
    needs, grants = processor_needs(), processor_grants()
    # The code's needs, spelled out: a regression here means the code changed.
    assert ("dynamodb:BatchWriteItem", "results_table") in needs
    assert ("dynamodb:Scan", "rules_table") in needs
    assert ("dynamodb:UpdateItem", "idempotency_table") in needs
    assert ("sagemaker:InvokeEndpoint", "endpoint_name") in needs
    assert sorted(needs - grants) == [], "the code calls what the role does not allow"
    assert sorted(grants - needs) == [], "the role allows what the code never calls"


def test_processor_tables_are_the_stack_json_keys_the_code_uses():
    tables = next(b["tables"] for b in parsed(REPO / "services" / "main.tf")["locals"]
                  if "tables" in b)
    for name, keys in (("results_table", "results"), ("state_table", "state"),
                       ("rules_table", "rules"), ("idempotency_table", "idempotency")):
        assert tables[name]["hash_key"] == f"${{local.keys.{keys}.partition}}"
    adapters = (REPO / "stocksage" / "adapters" / "dynamodb.py").read_text()
    for keys in ("state", "results", "rules"):
        assert f'STACK.keys["{keys}"]' in adapters
    # Powertools idempotency uses key "id" and TTL "expiration" by default.
    assert STACK["keys"]["idempotency"] == {"partition": "id"}
    assert tables["idempotency_table"]["ttl_attribute"] == "expiration"
    assert tables["results_table"]["ttl_attribute"] == "expires_at"
    assert "expires_at" in adapters  # the TTL attribute the code writes


# --- collector task definition ---------------------------------------------------------------

def test_collector_task_is_production_shaped():
    ecs = (REPO / "modules" / "ecs_fargate_service" / "main.tf").read_text()
    assert 'capacity_providers = ["FARGATE", "FARGATE_SPOT"]' in ecs
    assert "readonlyRootFilesystem = true" in ecs and "stopTimeout = var.stop_timeout" in ecs
    assert "secrets     = [for k in sort(keys(var.secrets))" in ecs
    assert 'logDriver = "awslogs"' in ecs and "assign_public_ip = false" in ecs
    collector = blocks(REPO / "services", "module")["collector"]
    assert collector["stop_timeout"] == "${var.collector_stop_timeout_seconds}"
    assert collector["writable_paths"] == ["/tmp"]
    app = (REPO / "stocksage" / "collector" / "app.py").read_text()
    assert "stopTimeout" in app  # the flush budget is documented where SIGTERM is handled
    variables = blocks(REPO / "services", "variable")
    default = variables["collector_stop_timeout_seconds"]["default"]
    assert 10 <= default <= 120
    repo = resource(REPO / "services", "aws_ecr_repository", "collector")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert first(repo["image_scanning_configuration"])["scan_on_push"] is True
    assert first(repo["encryption_configuration"])["encryption_type"] == "KMS"
    for env in ("dev", "prod"):
        values = parsed(REPO / "services" / "envs" / f"{env}.tfvars")
        assert values["collector_source"] == "live"
    dev = parsed(REPO / "services" / "envs" / "dev.tfvars")
    assert dev["collector_capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE_SPOT"


# --- analytics: Glue schema from stack.json, projection = stocksage.history layout ------------

def test_glue_tables_come_from_stack_json_and_the_history_layout():
    text = (REPO / "services" / "analytics.tf").read_text()
    assert "local.stack.indicator_columns" in text and "local.stack.features" in text
    table = resource(REPO / "services", "aws_glue_catalog_table", "bars")
    params = table["parameters"]
    template = params["storage.location.template"]
    key = history_key("TSLA", datetime(2021, 3, 5, tzinfo=UTC), "x")
    prefix = key.rsplit("/", 1)[0] + "/"
    rendered = (template.replace("$${symbol}", "TSLA").replace("$${year}", "2021")
                .replace("$${month}", "03"))
    assert rendered.endswith(prefix), (rendered, prefix)
    assert params["projection.month.digits"] == "2"
    assert [p["name"] for p in table["partition_keys"]] == ["symbol", "year", "month"]
    serde = first(first(table["storage_descriptor"])["ser_de_info"])["serialization_library"]
    assert serde == "org.openx.data.jsonserde.JsonSerDe"
    results = resource(REPO / "services", "aws_glue_catalog_table", "results")
    assert results["parameters"]["classification"] == "dynamodb"
    variables = blocks(REPO / "services", "variable")
    assert variables["enable_quicksight"]["default"] is False


# --- every environment's tfvars pass the variable validations --------------------------------

def _console(root: str, tmp: Path, args: list[str], expression: str) -> str:
    """terraform console on a copy of ROOT with a local backend (validations are evaluated)."""
    work = tmp / "repo"
    if not work.exists():
        for part in ("modules", "network", "services"):
            shutil.copytree(REPO / part, work / part,
                            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        (work / "stocksage").mkdir()
        shutil.copy(REPO / "stocksage" / "stack.json", work / "stocksage")
    root_dir = work / root
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    env.pop("TF_DATA_DIR", None)
    rc = REPO / root / ".terraform" / "validate" / "terraformrc"
    if not rc.exists():  # scripts/tf.sh writes the provider-mirror CLI config (when a mirror exists)
        subprocess.run(["bash", str(REPO / "scripts" / "tf.sh"), root, "local", "validate",
                        "-no-color"], check=True, capture_output=True, timeout=300)
    if rc.exists():
        env["TF_CLI_CONFIG_FILE"] = str(rc)
    if not (root_dir / ".terraform").exists():
        (root_dir / "backend_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
        subprocess.run([TERRAFORM, "init", "-input=false", "-no-color"], cwd=root_dir, env=env,
                       check=True, capture_output=True, timeout=300)
    result = subprocess.run([TERRAFORM, "console", "-no-color", *args], cwd=root_dir, env=env,
                            input=expression, capture_output=True, text=True, timeout=300,
                            check=False)
    return result.stdout + result.stderr


EXTRA_ARGS = {
    "services": ["-var", "processor_zip=build/lambda/processor.zip"],
    "network": [],
}


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
@pytest.mark.parametrize("root", ["network", "services"])
def test_every_environment_tfvars_passes_the_validations(root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"console-{root}")
    for env in ("local", "dev", "prod"):
        args = [f"-var-file=envs/{env}.tfvars", *EXTRA_ARGS[root]]
        if env == "local":
            args += ["-var", "aws_endpoint_url=http://127.0.0.1:4566"]
        out = _console(root, tmp, args, "var.environment\n")
        assert "Error" not in out and f'"{env}"' in out, f"{root}/{env}:\n{out}"
    # The mechanism catches a broken value (so a green run above means something).
    bad = tmp / "bad.tfvars"
    bad.write_text('environment = "prod"\naws_endpoint_url = "http://127.0.0.1:4566"\n')
    out = _console(root, tmp, ["-var-file=envs/prod.tfvars", f"-var-file={bad}",
                               *EXTRA_ARGS[root]], "var.environment\n")
    assert "Invalid value for variable" in out


# --- wrapper: no credentials -> clear message, no stack trace --------------------------------

def test_plan_without_credentials_fails_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               HOME=str(tmp_path))
    result = subprocess.run(["bash", str(REPO / "scripts" / "tf.sh"), "network", "dev", "plan"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 3, result.stderr
    assert "no AWS credentials for ENV=dev" in result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr


def test_makefile_orders_network_before_services():
    make = (REPO / "Makefile").read_text()
    for target, first, second in (("plan", "network", "services"),
                                  ("apply", "network", "services"),
                                  ("destroy", "services", "network")):
        body = make.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert body.index(f"tf.sh {first}") < body.index(f"tf.sh {second}"), target


# --- packaging: the layer is what the tests run ------------------------------------------------

def test_layer_pins_are_the_versions_the_tests_use():
    lines = [line.split("#")[0].strip()
             for line in (REPO / "requirements" / "processor-layer.txt").read_text().splitlines()]
    pins = dict(re.sub(r"\[.*\]", "", line).split("==") for line in lines if line)
    assert set(pins) == {"numpy", "pandas", "ta", "aws-lambda-powertools"}
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: layer {version}, tests run " \
                                                   f"{metadata.version(name)}"
    project = (REPO / "pyproject.toml").read_text()
    for name in pins:
        assert f'"{name}' in project  # every layer package is a runtime dependency
