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
import sys
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

from stocksage.history import history_key

hcl2 = pytest.importorskip("hcl2")

REPO = Path(__file__).resolve().parents[3]
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


def services_locals() -> dict:
    found: dict = {}
    for path in sorted((REPO / "services").glob("*.tf")):
        for block in parsed(path).get("locals", []):
            found.update(block)
    return found


def lambda_modules() -> dict[str, dict]:
    """Every services module call built from modules/lambda_function, by name.

    A for_each call over ``local.X`` is expanded into one entry per key (``name[key]``) with the
    per-function values of ``local.X`` in place of ``each.value.*``.
    """
    modules = {}
    for name, body in blocks(REPO / "services", "module").items():
        if body.get("source") != "../modules/lambda_function":
            continue
        for_each = body.get("for_each")
        if not for_each:
            modules[name] = body
            continue
        local = re.fullmatch(r"\$\{local\.(\w+)\}", for_each).group(1)
        for key, values in services_locals()[local].items():
            expanded = {k: v for k, v in body.items()}
            for attr, value in body.items():
                if isinstance(value, str) and (
                        m := re.fullmatch(r"\$\{each\.value\.(\w+)\}", value)):
                    expanded[attr] = values[m.group(1)]
            modules[f"{name}[{key}]"] = expanded
    return modules


# --- environment variables: read by the code == set by Terraform ----------------------------

READERS = {"_require": True, "_int": False, "_float": False}


def settings_reads() -> dict[str, dict[str, bool]]:
    """{SettingsClass: {VAR: required}} from stocksage/settings.py (AST of each from_env)."""
    tree = ast.parse((REPO / "stocksage" / "settings.py").read_text())
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
    "put_object": ["s3:PutObject"],
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
                  "endpoint_name": "sagemaker", "_bucket": "s3"}


def _adapter_classes() -> dict[str, ast.ClassDef]:
    classes = {}
    for path in (REPO / "stocksage" / "adapters").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
    return classes


def _adapter_functions() -> dict[str, ast.FunctionDef]:
    """Module-level helpers of the adapters (their AWS calls count for the classes using them)."""
    return {node.name: node for path in (REPO / "stocksage" / "adapters").rglob("*.py")
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
    """{(action, settings attribute naming the resource)} derived from the processor's wiring
    (``stocksage/adapters/wiring.py``: the adapters it builds and the settings it gives them)."""
    tree = ast.parse((REPO / "stocksage" / "adapters" / "wiring.py").read_text())
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
    "module.failures_queue.arn": "failure_queue_url",
    "local.endpoint_arn": "endpoint_name",
    "module.history_bucket.arn}/quarantine/*": "quarantine_bucket",
}


def processor_grants() -> set[tuple[str, str]]:
    module = lambda_modules()["processor"]
    grants = set()
    for sid, statement in module["policy_statements"].items():
        for resource in statement["resources"]:
            key = RESOURCE_OF_EXPRESSION.get(resource.strip("${}"))
            assert key, f"{sid}: unknown resource expression {resource}"
            grants.update((action, key) for action in statement["actions"])
    # The module grants sqs:SendMessage on each SQS on-failure destination
    # (modules/lambda_function).
    for source in module.get("kinesis_event_sources", {}).values():
        key = RESOURCE_OF_EXPRESSION[source["on_failure_destination_arn"].strip("${}")]
        grants.add(("sqs:SendMessage", key))
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
    assert ("s3:PutObject", "quarantine_bucket") in needs
    assert sorted(needs - grants) == [], "the code calls what the role does not allow"
    assert sorted(grants - needs) == [], "the role allows what the code never calls"


def test_processor_tables_are_the_stack_json_keys_the_code_uses():
    tables = next(b["tables"] for b in parsed(REPO / "services" / "main.tf")["locals"]
                  if "tables" in b)
    for name, keys in (("results_table", "results"), ("state_table", "state"),
                       ("rules_table", "rules"), ("idempotency_table", "idempotency")):
        assert tables[name]["hash_key"] == f"${{local.keys.{keys}.partition}}"
    adapters = "\n".join(p.read_text() for p in
                         (REPO / "stocksage" / "adapters" / "dynamodb").glob("*.py"))
    for keys in ("state", "results", "rules"):
        assert f'STACK.keys["{keys}"]' in adapters
    # Powertools idempotency uses key "id" and TTL "expiration" by default.
    assert STACK["keys"]["idempotency"] == {"partition": "id"}
    assert tables["idempotency_table"]["ttl_attribute"] == "expiration"
    assert tables["results_table"]["ttl_attribute"] == "expires_at"
    assert "expires_at" in adapters  # the TTL attribute the code writes


# --- IAM: every other function and role allows exactly what its code (or request) needs -------

#: boto3 method -> IAM actions it needs, including what its request parameters add (SageMaker
#: API reference: a RoleArn/ExecutionRoleArn needs iam:PassRole, Tags sagemaker:AddTags, a
#: KmsKeyId lets SageMaker create grants on the key for the caller: kms:CreateGrant and
#: kms:DescribeKey; a PutRecords on a KMS-encrypted stream needs kms:GenerateDataKey).
SDK_ACTIONS = {
    ("sagemaker", "describe_training_job"): ["sagemaker:DescribeTrainingJob"],
    ("sagemaker", "create_training_job"): ["sagemaker:CreateTrainingJob", "sagemaker:AddTags",
                                           "iam:PassRole", "kms:CreateGrant", "kms:DescribeKey"],
    ("sagemaker", "describe_endpoint"): ["sagemaker:DescribeEndpoint"],
    ("sagemaker", "describe_endpoint_config"): ["sagemaker:DescribeEndpointConfig"],
    ("sagemaker", "describe_model"): ["sagemaker:DescribeModel"],
    ("sagemaker", "create_model"): ["sagemaker:CreateModel", "sagemaker:AddTags", "iam:PassRole"],
    ("sagemaker", "create_endpoint_config"): ["sagemaker:CreateEndpointConfig",
                                              "sagemaker:AddTags", "kms:CreateGrant",
                                              "kms:DescribeKey"],
    ("sagemaker", "update_endpoint"): ["sagemaker:UpdateEndpoint", "kms:CreateGrant",
                                       "kms:DescribeKey"],
    ("s3", "get_object"): ["s3:GetObject"],
    ("s3", "put_object"): ["s3:PutObject"],
    ("dynamodb", "get_item"): ["dynamodb:GetItem"],
    ("dynamodb", "put_item"): ["dynamodb:PutItem"],
    ("dynamodb", "scan"): ["dynamodb:Scan"],
    ("kinesis", "put_records"): ["kinesis:PutRecords", "kms:GenerateDataKey"],
}


def _module_tree(dotted: str) -> ast.Module:
    return ast.parse((REPO / (dotted.replace(".", "/") + ".py")).read_text())


#: Adapter class -> the name its instance has where the lifecycle code calls it (the ports of
#: stocksage.lifecycle.promotion and the handlers' locals).
RECEIVERS = {"SageMakerPlatform": "platform", "DynamoModelRegistry": "registry"}


def _attribute_calls(node: ast.AST, receiver: str) -> set[str]:
    """Methods called on the variable ``receiver`` inside ``node``."""
    return {n.func.attr for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name) and n.func.value.id == receiver}


def _reached_functions(dotted: str, entry: str, seen: set | None = None) -> list[ast.AST]:
    """Functions reached from ``dotted.entry``: same-module calls and ``stocksage.*`` imports."""
    seen = set() if seen is None else seen
    if (dotted, entry) in seen:
        return []
    seen.add((dotted, entry))
    tree = _module_tree(dotted)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    imported = {alias.asname or alias.name: node.module for node in tree.body
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stocksage.")
                for alias in node.names}
    if entry not in functions:
        return []
    found = [functions[entry]]
    for call in (n for n in ast.walk(functions[entry]) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", None)
        if name in functions:
            found += _reached_functions(dotted, name, seen)
        elif name in imported and (REPO / (imported[name].replace(".", "/") + ".py")).exists():
            found += _reached_functions(imported[name], name, seen)
    return found


def _client_services(cls: ast.ClassDef) -> dict[str, str]:
    """self attribute -> AWS service, from __init__ (``self.sm = sagemaker_client``)."""
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    services = {}
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            names = [n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)]
            for name in names:
                if m := re.fullmatch(r"(\w+?)_(client|resource)", name):
                    services[node.targets[0].attr] = m.group(1)
    return services


def _class_sdk_calls(cls: ast.ClassDef, methods: set[str]) -> set[tuple[str, str]]:
    """(service, boto3 method) the given methods of an adapter call, following self.m()."""
    own = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    services = _client_services(cls)
    todo, done, calls = [m for m in methods if m in own], set(), set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for node in ast.walk(own[name]):
            if not isinstance(node, ast.Attribute) or not isinstance(node.value, ast.Attribute):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                        and node.value.id == "self" and node.attr in own:
                    todo.append(node.attr)
                continue
            receiver = node.value
            if isinstance(receiver.value, ast.Name) and receiver.value.id == "self" \
                    and receiver.attr in services:
                calls.add((services[receiver.attr], node.attr))
    return calls


def handler_sdk_calls(handler_module: str) -> set[tuple[str, str]]:
    """(service, boto3 method) a Lambda handler module reaches through the adapters."""
    reached = _reached_functions(handler_module, "lambda_handler")
    reached += [n for n in _module_tree(handler_module).body if isinstance(n, ast.FunctionDef)
                and n.name == "_clients"]
    instantiated = {getattr(n.func, "id", None) for f in reached for n in ast.walk(f)
                    if isinstance(n, ast.Call)}
    calls = set()
    for name, cls in _adapter_classes().items():
        if name in instantiated:
            assert name in RECEIVERS, f"{handler_module} uses {name}: add it to RECEIVERS"
            methods = set().union(*(_attribute_calls(f, RECEIVERS[name]) for f in reached))
            calls |= _class_sdk_calls(cls, methods)
    return calls


def actions_of(calls: set[tuple[str, str]]) -> set[str]:
    missing = sorted(c for c in calls if c not in SDK_ACTIONS)
    assert not missing, f"add these boto3 calls to SDK_ACTIONS: {missing}"
    return {a for c in calls for a in SDK_ACTIONS[c]}


def statement_actions(statements: dict) -> set[str]:
    return {a for s in statements.values() for a in s["actions"]}


@pytest.mark.parametrize("function", ["retrain", "promote"])
def test_lifecycle_role_allows_exactly_what_the_code_calls(function):
    module = lambda_modules()[f"lifecycle_function[{function}]"]
    calls = handler_sdk_calls(module["handler"].rsplit(".", 1)[0])
    needs = actions_of(calls)
    grants = statement_actions(module["policy_statements"])
    assert sorted(needs - grants) == [], f"{function}: the code calls what the role does not allow"
    assert sorted(grants - needs) == [], f"{function}: the role allows what the code never calls"


def test_lifecycle_call_scan_sees_the_known_calls():
    retrain = handler_sdk_calls("lambdas.retrain")
    promote = handler_sdk_calls("lambdas.promote")
    assert ("sagemaker", "create_training_job") in retrain and ("dynamodb", "put_item") in retrain
    assert ("sagemaker", "update_endpoint") in promote and ("sagemaker", "create_model") in promote
    # registry.all (Scan) is only used by rollback (operator command), never by the Lambda.
    assert ("dynamodb", "scan") not in promote


def test_lifecycle_kms_grants_and_pass_role_are_conditioned():
    conditions = services_locals()
    for function in ("retrain", "promote"):
        statements = lambda_modules()[f"lifecycle_function[{function}]"]["policy_statements"]
        for sid, statement in statements.items():
            text = json.dumps(statement)
            if m := re.search(r"local\.(\w+)", str(statement.get("conditions", ""))):
                text += json.dumps(conditions[m.group(1)])
            if "kms:CreateGrant" in statement["actions"]:
                assert "kms:GrantIsForAWSResource" in text, f"{function}.{sid}"
            if "iam:PassRole" in statement["actions"]:
                assert "iam:PassedToService" in text and "sagemaker.amazonaws.com" in text


def test_lifecycle_functions_are_one_for_each_block_with_failure_destinations():
    modules = blocks(REPO / "services", "module")
    assert "retrain" not in modules and "promote" not in modules
    block = modules["lifecycle_function"]
    assert block["for_each"] == "${local.lifecycle_functions}"
    assert block["create_async_event_config"] is True
    assert "module.lifecycle_failures_queue.arn" in block["async_on_failure_destination_arn"]


def collector_sdk_calls() -> set[tuple[str, str]]:
    """(service, method) of the collector's AWS calls: clients made in stocksage/collector
    (the Kinesis sink; the S3 cursor store in cursor.py)."""
    calls = set()
    for path in (REPO / "stocksage" / "collector").rglob("*.py"):
        tree = ast.parse(path.read_text())
        service = "s3" if path.name == "cursor.py" else "kinesis"
        known = {m for (svc, m) in SDK_ACTIONS if svc == service} | {"put_record"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Attribute) \
                    and node.func.value.attr == "client" and node.func.attr in known:
                calls.add((service, node.func.attr))
    return calls


def test_collector_task_role_allows_exactly_what_the_code_calls():
    calls = collector_sdk_calls()
    assert calls == {("kinesis", "put_records"), ("s3", "get_object"), ("s3", "put_object")}, \
        calls
    collector = blocks(REPO / "services", "module")["collector"]
    grants = statement_actions(collector["task_policy_statements"])
    # The cursor object is SSE-KMS: reading it needs kms:Decrypt, writing GenerateDataKey
    # (already needed by put_records on the encrypted stream). s3:ListBucket, narrowed to the
    # cursor key, makes S3 answer a missing cursor with 404 instead of 403
    # (test_first_start_without_a_cursor_reads_as_empty_with_the_deployed_grant).
    assert grants == actions_of(calls) | {"kms:Decrypt", "s3:ListBucket"}


class S3AsAws:
    """S3's documented answer to GetObject of a missing key: 404 NoSuchKey when the caller may
    s3:ListBucket the bucket, else 403 AccessDenied (the emulator always answers 404)."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self, may_list: bool) -> None:
        self.may_list = may_list

    def get_object(self, Bucket, Key):
        from botocore.exceptions import ClientError

        if self.may_list:
            raise self.exceptions.NoSuchKey(Key)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")


def test_first_start_without_a_cursor_reads_as_empty_with_the_deployed_grant():
    from stocksage.collector.cursor import S3CursorStore

    statements = blocks(REPO / "services", "module")["collector"]["task_policy_statements"]
    key = blocks(REPO / "services", "locals")["collector_cursor_key"]
    listing = [st for st in statements.values() if "s3:ListBucket" in st["actions"]]
    may_list = any(st["resources"] == ["${module.history_bucket.arn}"] and
                   st["conditions"][0]["values"] == ["${local.collector_cursor_key}"]
                   for st in listing)
    store = S3CursorStore(S3AsAws(may_list), "history", key)
    assert store.load() == {}  # 404: no cursor yet, the lookback applies
    with pytest.raises(Exception, match="AccessDenied"):
        S3CursorStore(S3AsAws(False), "history", key).load()  # without the grant: 403


def _policy_document_actions(directory: Path, name: str) -> set[str]:
    """Actions of a policy document: its statements and its dynamic (optional) statements."""
    for path in sorted(directory.glob("*.tf")):
        for block in parsed(path).get("data", []):
            doc = block.get("aws_iam_policy_document", {}).get(name)
            if doc:
                statements = list(doc.get("statement", []))
                for dynamic in doc.get("dynamic", []):
                    statements += dynamic.get("statement", {}).get("content", [])
                return {a for st in statements for a in st["actions"]}
    raise AssertionError(f"no policy document {name} in {directory}")


#: Roles assumed by AWS services for our requests: what the service does with them (SageMaker
#: training: read the channels, write the output, KMS volume/output keys with grants, logs,
#: metrics; hosting: read model and code, decrypt, logs, metrics; Firehose with a Kinesis
#: source: read the stream, write S3, data key, delivery error logs). Held exactly.
SERVICE_ROLE_ACTIONS = {
    ("services", "training"): {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey",
        "kms:CreateGrant", "kms:DescribeKey", "logs:CreateLogGroup", "logs:CreateLogStream",
        "logs:PutLogEvents", "logs:DescribeLogStreams", "cloudwatch:PutMetricData"},
    ("modules/sagemaker_endpoint", "this"): {
        "s3:GetObject", "s3:ListBucket", "kms:Decrypt", "logs:CreateLogGroup",
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
        "cloudwatch:PutMetricData"},
    # modules/firehose_s3 with a Kinesis source (services/firehose.tf, module.history_delivery).
    ("modules/firehose_s3", "this"): {
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
        "kinesis:GetShardIterator", "kinesis:ListShards", "s3:GetBucketLocation",
        "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload",
        "s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey",
        "logs:PutLogEvents"},
}


@pytest.mark.parametrize(("directory", "document"), sorted(SERVICE_ROLE_ACTIONS))
def test_service_roles_allow_exactly_what_the_service_needs(directory, document):
    assert _policy_document_actions(REPO / directory, document) == \
        SERVICE_ROLE_ACTIONS[(directory, document)]


def test_history_delivery_reads_the_bar_stream_into_the_history_bucket():
    """The Firehose role above is the history's: Kinesis source, history bucket, its prefixes."""
    history = blocks(REPO / "services", "module")["history_delivery"]
    assert history["source"] == "../modules/firehose_s3"
    assert history["kinesis_source_stream_arn"] == "${aws_kinesis_stream.bars.arn}"
    assert history["bucket_arn"] == "${module.history_bucket.arn}"
    assert history["write_prefixes"] == ["${local.stack.lifecycle.history_prefix}",
                                         "${local.stack.lifecycle.trades_prefix}",
                                         "errors/history/"]
    (extraction,) = [p for p in history["processors"] if p["type"] == "MetadataExtraction"]
    query = {p["name"]: p["value"] for p in extraction["parameters"]}
    assert query["MetadataExtractionQuery"] == "${local.stack.lifecycle.history_partition_query}"
    archive = blocks(REPO / "modules" / "analytics", "module")["alerts_archive"]
    assert archive["source"] == "../firehose_s3" and "kinesis_source_stream_arn" not in archive


def test_training_role_reads_exactly_the_channels_of_the_request():
    from stocksage.lifecycle.schedule import RetrainConfig, parse_tick, training_job_request

    cfg = STACK["lifecycle"]
    config = RetrainConfig(
        bucket="B", job_prefix="p", role_arn="arn:aws:iam::1:role/r", image="i",
        region="us-east-1", history_prefix=cfg["history_prefix"], source_key=cfg["source_key"],
        output_prefix=cfg["output_prefix"], instance_type="ml.m5.large", volume_gb=5,
        max_runtime_s=60, kms_key_arn="arn:aws:kms:us-east-1:1:key/k", window_days=0,
        hyperparameters={}, metric_definitions=[])
    tick = parse_tick({"scheduled_time": "2026-01-02T03:04:00Z"})
    request = training_job_request(config, tick, champion_artifact=(
        "s3://B/model-artifacts/initial/model.tar.gz"), champion_version="v0")
    for doc in ("training",):
        statements = next(block["aws_iam_policy_document"][doc]["statement"]
                          for path in sorted((REPO / "services").glob("*.tf"))
                          for block in parsed(path).get("data", [])
                          if doc in block.get("aws_iam_policy_document", {}))
    reads = next(st["resources"] for st in statements if st["actions"] == ["s3:GetObject"])
    writes = next(st["resources"] for st in statements if st["actions"] == ["s3:PutObject"])

    def covered(key: str, patterns: list[str]) -> bool:
        rendered = [p.replace("${local.history_arn}/", "")
                    .replace("${local.lifecycle_cfg.history_prefix}", cfg["history_prefix"])
                    .replace("${local.lifecycle_cfg.source_key}", cfg["source_key"])
                    .replace("${local.lifecycle_cfg.output_prefix}", cfg["output_prefix"])
                    for p in patterns]
        return any(key.startswith(r[:-1]) if r.endswith("*") else key == r for r in rendered)

    uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]]
    uris.append(json.loads(request["HyperParameters"]["sagemaker_submit_directory"]))
    for uri in uris:
        assert covered(uri.removeprefix("s3://B/"), reads), uri
    output = request["OutputDataConfig"]["S3OutputPath"].removeprefix("s3://B/")
    assert covered(output.rstrip("/") + "/job/output/model.tar.gz", writes), output
    assert request["OutputDataConfig"]["KmsKeyId"] and request["RoleArn"]


# --- trust and resource policies ----------------------------------------------------------------

def test_service_trust_policies_carry_a_source_condition():
    """Every trust policy for an AWS service limits who it acts for (confused deputy)."""
    for directory in [REPO / "services", REPO / "network",
                      *(p for p in (REPO / "modules").iterdir() if p.is_dir())]:
        for path in sorted(directory.glob("*.tf")):
            for block in parsed(path).get("data", []):
                for name, doc in block.get("aws_iam_policy_document", {}).items():
                    for st in doc.get("statement", []):
                        if st.get("actions") != ["sts:AssumeRole"]:
                            continue
                        text = json.dumps(st)
                        assert any(k in text for k in ("aws:SourceAccount", "aws:SourceArn",
                                                       "sts:ExternalId")), \
                            f"{path.relative_to(REPO)}: {name} trusts a service unconditionally"


def test_topics_and_queues_deny_insecure_transport():
    text = "\n".join(p.read_text() for p in (REPO / "services").glob("*.tf"))
    for resource in ("aws_sns_topic.alerts.arn", "aws_sns_topic.ops.arn"):
        pattern = (r'sid\s*=\s*"DenyInsecureTransport"[^}]*?' + re.escape(resource))
        assert re.search(pattern, text, re.DOTALL), f"{resource}: no TLS-only deny"
    assert text.count('variable = "aws:SecureTransport"') >= 2
    # Every queue is modules/sqs_queue, whose policy ends with the TLS-only deny of the queue.
    queue = (REPO / "modules" / "sqs_queue" / "main.tf").read_text()
    pattern = (r'sid\s*=\s*"DenyInsecureTransport"[^}]*?'
               + re.escape("resources = [aws_sqs_queue.this.arn]"))
    assert re.search(pattern, queue, re.DOTALL) and 'variable = "aws:SecureTransport"' in queue
    assert re.search(r"count\s*=\s*var\.deny_insecure_transport \|\|", queue)
    assert 'resource "aws_sqs_queue"' not in text, "queues go through modules/sqs_queue"
    modules = blocks(REPO / "services", "module")
    queues = {k: m for k, m in modules.items() if m["source"] == "../modules/sqs_queue"}
    assert set(queues) == {"failures_queue", "lifecycle_failures_queue", "alerts_inbox_queue"}
    for name, module in queues.items():
        assert module["deny_insecure_transport"] == "${local.deny_insecure_transport}", name
        assert module["kms_master_key_id"] == "${module.kms.key_arn}", name


def test_on_failure_permission_matches_the_destination_type():
    main = (REPO / "modules" / "lambda_function" / "main.tf").read_text()
    assert 'split(":", arn)[2] == "sqs"' in main and 'split(":", arn)[2] == "sns"' in main
    assert re.search(r'actions\s*=\s*\["sns:Publish"\]\s*\n'
                     r'\s*resources\s*=\s*local\.on_failure_topic_arns', main)
    assert re.search(r'actions\s*=\s*\["sqs:SendMessage"\]\s*\n'
                     r'\s*resources\s*=\s*local\.on_failure_queue_arns', main)


# --- collector task definition ---------------------------------------------------------------

def test_collector_task_is_production_shaped():
    ecs = (REPO / "modules" / "ecs_fargate_service" / "main.tf").read_text()
    assert 'capacity_providers = ["FARGATE", "FARGATE_SPOT"]' in ecs
    assert "readonlyRootFilesystem = true" in ecs and "stopTimeout = var.stop_timeout" in ecs
    assert "secrets     = [for k in sort(keys(var.secrets))" in ecs
    assert 'logDriver = "awslogs"' in ecs and "assign_public_ip = var.assign_public_ip" in ecs
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
    # The tables are in modules/analytics; their columns are the root's locals.
    analytics = blocks(REPO / "services", "module")["analytics"]
    assert analytics["create"] == "${var.enable_quicksight}"
    for columns in ("bar_columns", "result_columns", "alert_columns"):
        assert analytics[columns] == f"${{local.{columns}}}"
    assert analytics["history_bucket_name"] == "${module.history_bucket.bucket}"
    table = resource(REPO / "modules" / "analytics", "aws_glue_catalog_table", "bars")
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
    results = resource(REPO / "modules" / "analytics", "aws_glue_catalog_table", "results")
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
    # scripts/tf.sh writes the provider-mirror CLI config (when a mirror exists)
    if not rc.exists():
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
#: The services root's network_state variable as scripts/tf.sh passes it.
NETWORK_STATE = 'network_state={bucket="b",key="network/terraform.tfstate",region="us-east-1"}'
#: What scripts/tf.sh (network_state) or the operator (prod ops address) adds per environment.
ENV_ARGS = {
    ("services", "dev"): ["-var", NETWORK_STATE],
    ("services", "prod"): ["-var", NETWORK_STATE,
                           "-var", 'ops_email_subscriptions=["ops@example.com"]'],
}


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
@pytest.mark.parametrize("root", ["network", "services"])
def test_every_environment_tfvars_passes_the_validations(root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"console-{root}")
    for env in ("local", "dev", "prod"):
        args = [f"-var-file=envs/{env}.tfvars", *EXTRA_ARGS[root], *ENV_ARGS.get((root, env), [])]
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
    if root == "services":
        # Fail closed: prod without an ops subscription, dev without the network state.
        out = _console(root, tmp, ["-var-file=envs/prod.tfvars", *ENV_ARGS[("services", "dev")],
                                   *EXTRA_ARGS[root]], "var.environment\n")
        assert "prod needs at least one ops_email_subscriptions" in out, out
        out = _console(root, tmp, ["-var-file=envs/dev.tfvars", *EXTRA_ARGS[root]],
                       "var.environment\n")
        assert "dev and prod need network_state" in out, out


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


def _moto_profile(tmp_path: Path, port: int) -> dict[str, str]:
    """Environment whose AWS profile sends every call to a moto server on ``port`` (tf.sh unsets
    AWS_ENDPOINT_URL* for dev/prod, but honours the profile's endpoint_url like any AWS CLI)."""
    config = tmp_path / "config"
    config.write_text(f"[profile moto]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:{port}\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[moto]\naws_access_key_id = test\naws_secret_access_key = test\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials),
               AWS_PROFILE="moto", AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    return env


def test_services_plan_without_network_state_fails_closed(tmp_path, emulator, kw):
    """No network state = no plan (today's bug: empty subnets planned zero collector tasks)."""
    import boto3

    env = _moto_profile(tmp_path, emulator.port)
    s3 = boto3.client("s3", **kw)
    run = ["bash", str(REPO / "scripts" / "tf.sh"),
           "services", "dev", "plan"]
    bucket = "stocksage-dev-tfstate-123456789012"
    try:
        # 1. no state bucket of this account (123456789012 on moto): told to bootstrap it
        result = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 3, result.stderr
        assert "stocksage-dev-tfstate-123456789012" in result.stderr
        assert "make bootstrap-state ENV=dev" in result.stderr
        # 2. bucket, but no network state: told to apply the network first, nothing planned
        s3.create_bucket(Bucket=bucket)
        result = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 3, result.stderr
        assert ("no network state "
                "s3://stocksage-dev-tfstate-123456789012/network/terraform.tfstate"
                in result.stderr)
        assert "scripts/tf.sh network dev apply" in result.stderr
        assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    finally:  # the module's emulator is shared: leave no state bucket behind
        if bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)


def test_state_bucket_names_are_unique_per_account():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from bootstrap_state import state_bucket_name
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert state_bucket_name("dev", "123456789012") == "stocksage-dev-tfstate-123456789012"
    assert state_bucket_name("prod", "123456789012", "mine") == "mine"
    with pytest.raises(ValueError):
        state_bucket_name("dev", "")


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


def test_eventbridge_key_grant_is_bound_to_the_training_state_rule():
    """EventBridge writes a rule target's undeliverable events into the KMS-encrypted
    lifecycle failure queue. Its data-key grant is conditioned on the rule's ARN
    (``aws:SourceArn``), not on ``aws:SourceAccount``, which such deliveries may not carry;
    the ARN names exactly the rule that has the dead-letter queue."""
    kms = blocks(REPO / "services", "module")["kms"]
    bound = kms["service_source_arns"]
    arns = bound["events.amazonaws.com"]
    rule = resource(REPO / "services", "aws_cloudwatch_event_rule", "training_state")
    assert rule["name"] == "${local.names.training_state_rule}"
    assert arns == ["arn:${local.partition}:events:${local.region}:${local.account_id}:rule/"
                    "${local.names.training_state_rule}"]
    queue = blocks(REPO / "services", "module")["lifecycle_failures_queue"]
    grant = [s for s in queue["policy_statements"] if "events.amazonaws.com" in json.dumps(s)]
    assert grant and "aws_cloudwatch_event_rule.training_state.arn" in json.dumps(grant)
    module = (REPO / "modules" / "kms_key" / "main.tf").read_text()
    assert 'variable = "aws:SourceArn"' in module and "var.service_source_arns" in module
    assert "!contains(keys(var.service_source_arns), p)" in module  # not also by account
