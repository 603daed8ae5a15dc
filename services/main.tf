data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# stack, project, is_local, tags: root_common.tf (shared with network/).
locals {
  keys = local.stack.keys

  # Physical name of every stack.json resource: "<project>-<env>-<short>".
  names = { for key, short in local.stack.resources : key => "${local.project}-${var.environment}-${short}" }

  # TLS-only resource policies (buckets, topics, queues); off only for the plain-HTTP emulator.
  deny_insecure_transport = !local.is_local

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # Bucket names are global: account and region make them unique for whoever deploys.
  bucket_suffix = var.bucket_name_suffix == null ? "-${local.account_id}-${local.region}" : (var.bucket_name_suffix == "" ? "" : "-${var.bucket_name_suffix}")

  endpoint_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint/${lower(local.names.endpoint)}"

  tables = {
    results_table = {
      hash_key      = local.keys.results.partition
      range_key     = local.keys.results.sort
      ttl_attribute = "expires_at"
    }
    state_table = {
      hash_key      = local.keys.state.partition
      range_key     = null
      ttl_attribute = null
    }
    rules_table = {
      hash_key      = local.keys.rules.partition
      range_key     = local.keys.rules.sort
      ttl_attribute = null
    }
    # Powertools idempotency layout: key "id", TTL "expiration".
    idempotency_table = {
      hash_key      = local.keys.idempotency.partition
      range_key     = null
      ttl_attribute = "expiration"
    }
    # One item per model version (services/lifecycle.tf, stocksage.lifecycle.versions).
    versions_table = {
      hash_key      = local.keys.versions.partition
      range_key     = null
      ttl_attribute = null
    }
  }
}

################################################################################
# Encryption key (everything below uses it)
################################################################################

module "kms" {
  source = "../modules/kms_key"

  alias_name              = local.names.key
  description             = "Data key of ${local.project} ${var.environment}: stream, tables, bucket, topic, queues, logs."
  deletion_window_in_days = var.kms_deletion_window_days
  # SNS must encrypt what it delivers into the KMS-encrypted alerts inbox queue; CloudWatch
  # alarms publish to the KMS-encrypted ops topic (observability.tf); EventBridge writes
  # undeliverable training-state events into the KMS-encrypted lifecycle failure queue.
  service_principals = concat(["cloudwatch.amazonaws.com", "events.amazonaws.com"], var.create_local_alerts_queue ? ["sns.amazonaws.com"] : [])
  # EventBridge's dead-letter delivery is bound to the training-state rule (aws:SourceArn):
  # aws:SourceAccount may be absent from it. The ARN is built from the name (no cycle).
  service_source_arns = {
    "events.amazonaws.com" = ["arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.names.training_state_rule}"]
  }
}

################################################################################
# Stream of bars
################################################################################

resource "aws_kinesis_stream" "bars" {
  name                      = local.names.stream
  shard_count               = var.stream_mode == "PROVISIONED" ? var.stream_shard_count : null
  retention_period          = var.stream_retention_hours
  encryption_type           = "KMS"
  kms_key_id                = module.kms.key_arn
  enforce_consumer_deletion = true

  stream_mode_details {
    stream_mode = var.stream_mode
  }
}

################################################################################
# Tables (on-demand, PITR, SSE-KMS)
################################################################################

module "tables" {
  source   = "../modules/dynamodb_table"
  for_each = local.tables

  name                   = local.names[each.key]
  hash_key               = each.value.hash_key
  range_key              = each.value.range_key
  ttl_attribute          = each.value.ttl_attribute
  kms_key_arn            = module.kms.key_arn
  point_in_time_recovery = true
  deletion_protection    = var.deletion_protection
}

################################################################################
# History bucket (bar history, model artifacts, inference code)
################################################################################

module "history_bucket" {
  source = "../modules/s3_bucket"

  bucket                             = "${local.names.history_bucket}${local.bucket_suffix}"
  kms_key_arn                        = module.kms.key_arn
  force_destroy                      = var.history_force_destroy
  deny_insecure_transport            = local.deny_insecure_transport
  noncurrent_version_expiration_days = var.history_noncurrent_days
  lifecycle_rules = [
    {
      id              = "bars-to-infrequent-access"
      prefix          = "bars/"
      transition_days = var.history_ia_transition_days
      storage_class   = "STANDARD_IA"
    },
  ]
}

################################################################################
# Alerts topic (+ a local inbox queue to read them back)
################################################################################

resource "aws_sns_topic" "alerts" {
  name              = local.names.alerts_topic
  kms_master_key_id = module.kms.key_arn
}

# TLS-only publishing and subscribing, like the buckets.
data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:Receive"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  count = local.deny_insecure_transport ? 1 : 0

  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

module "alerts_inbox_queue" {
  source = "../modules/sqs_queue"
  count  = var.create_local_alerts_queue ? 1 : 0

  name                      = local.names.alerts_queue
  kms_master_key_id         = module.kms.key_arn
  message_retention_seconds = 345600
  deny_insecure_transport   = local.deny_insecure_transport
  policy_statements = [
    {
      sid        = "AllowAlertsTopic"
      actions    = ["sqs:SendMessage"]
      principals = [{ type = "Service", identifiers = ["sns.amazonaws.com"] }]
      conditions = [{ test = "ArnEquals", variable = "aws:SourceArn", values = [aws_sns_topic.alerts.arn] }]
    },
  ]
}

resource "aws_sns_topic_subscription" "alerts_inbox" {
  count = var.create_local_alerts_queue ? 1 : 0

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "sqs"
  endpoint  = module.alerts_inbox_queue[0].arn
  # Keep the SNS envelope so MessageAttributes stay visible to the reader.
  raw_message_delivery = false

  depends_on = [module.alerts_inbox_queue]
}

################################################################################
# Failure queue (event source on-failure destination + quarantined malformed records)
################################################################################

module "failures_queue" {
  source = "../modules/sqs_queue"

  name                      = local.names.failure_queue
  kms_master_key_id         = module.kms.key_arn
  message_retention_seconds = 1209600
  deny_insecure_transport   = local.deny_insecure_transport
}

################################################################################
# Processor Lambda + Kinesis event source mapping
################################################################################

module "processor" {
  source = "../modules/lambda_function"

  function_name      = local.names.processor_function
  description        = "Kinesis bars -> indicators, prediction, results, alerts."
  runtime            = "python3.12"
  handler            = "lambdas.processor.lambda_handler"
  zip_path           = var.processor_zip
  layers             = concat(aws_lambda_layer_version.dependencies[*].arn, var.processor_layers)
  memory_size        = var.processor_memory_mb
  timeout            = var.processor_timeout_seconds
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  tracing_mode       = var.processor_tracing_mode

  # Exactly the variables ProcessorSettings.from_env() reads (docs/DESIGN.md).
  environment_variables = {
    RESULTS_TABLE                = module.tables["results_table"].name
    STATE_TABLE                  = module.tables["state_table"].name
    RULES_TABLE                  = module.tables["rules_table"].name
    IDEMPOTENCY_TABLE            = module.tables["idempotency_table"].name
    ALERTS_TOPIC_ARN             = aws_sns_topic.alerts.arn
    FAILURE_QUEUE_URL            = module.failures_queue.url
    ENDPOINT_NAME                = local.names.endpoint
    RESULT_TTL_DAYS              = tostring(var.result_ttl_days)
    RULES_MAX_AGE                = tostring(var.rules_cache_seconds)
    QUARANTINE_BUCKET            = module.history_bucket.bucket
    MAX_FUTURE_SKEW_SECONDS      = tostring(var.max_future_skew_seconds)
    POWERTOOLS_SERVICE_NAME      = "${local.project}-${local.stack.resources.processor_function}"
    POWERTOOLS_METRICS_NAMESPACE = local.project
    LOG_LEVEL                    = var.log_level
  }

  policy_statements = {
    # Exactly the calls the code makes (tests/unit/test_terraform_contracts.py derives them
    # from stocksage/adapters and lambdas and compares): results batch_write_item, query
    # (pending predictions; the prev_bar_time chain of stale bars), update_item (fill them); state
    # batch_get_item and conditional puts in transact_write_items (-> PutItem); the rules table read whole (paginated Scan,
    # Powertools Parameters provider, cached);
    # Powertools idempotency -> Get/Put/Update/DeleteItem.
    WriteResults = {
      actions   = ["dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:UpdateItem"]
      resources = [module.tables["results_table"].arn]
    }
    ReadWriteWindowState = {
      actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
      resources = [module.tables["state_table"].arn]
    }
    ReadAlertRules = {
      actions   = ["dynamodb:Scan"]
      resources = [module.tables["rules_table"].arn]
    }
    Idempotency = {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [module.tables["idempotency_table"].arn]
    }
    InvokeEndpoint = {
      actions   = ["sagemaker:InvokeEndpoint"]
      resources = [local.endpoint_arn]
    }
    PublishAlerts = {
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.alerts.arn]
    }
    # Malformed records are quarantined into the failure queue by the handler: the module's
    # on-failure destination statement (sqs:SendMessage on that queue) already covers it;
    # payloads over 64 KiB go to the history bucket under quarantine/ (SqsQuarantine).
    QuarantineLargePayloads = {
      actions   = ["s3:PutObject"]
      resources = ["${module.history_bucket.arn}/quarantine/*"]
    }
  }

  kinesis_event_sources = {
    bars = {
      stream_arn                         = aws_kinesis_stream.bars.arn
      starting_position                  = "TRIM_HORIZON"
      batch_size                         = var.esm_batch_size
      maximum_batching_window_in_seconds = var.esm_maximum_batching_window_seconds
      parallelization_factor             = var.esm_parallelization_factor
      bisect_batch_on_function_error     = true
      maximum_retry_attempts             = var.esm_maximum_retry_attempts
      maximum_record_age_in_seconds      = var.esm_maximum_record_age_seconds
      on_failure_destination_arn         = module.failures_queue.arn
    }
  }
}

################################################################################
# SageMaker model + endpoint
################################################################################

# CreateEndpoint fails on AWS when the model artifact is missing (the container cannot load it),
# and on a fresh account it is: the history bucket is created by this same apply. The apply
# stops here with the next step instead (the emulator does not load models, and `make up`
# trains the first model right after its apply, so the local stack skips the check).
data "aws_s3_objects" "model_artifact" {
  count    = var.create_endpoint && var.check_model_artifact && !local.is_local ? 1 : 0
  bucket   = module.history_bucket.bucket
  prefix   = local.stack.model.artifact_key
  max_keys = 1

  lifecycle {
    postcondition {
      condition     = contains(self.keys, local.stack.model.artifact_key)
      error_message = "No model artifact at s3://${self.bucket}/${local.stack.model.artifact_key} yet, so the endpoint cannot be created. Next step: apply with -var create_endpoint=false -var collector_desired_count=0, upload the history, code bundle and first model (README, Deploy to AWS, steps 4-6), then apply again (if a promoted model already serves and the bootstrap artifact was removed on purpose: -var check_model_artifact=false)."
    }
  }

  depends_on = [module.history_bucket]
}

module "endpoint" {
  source = "../modules/sagemaker_endpoint"
  count  = var.create_endpoint ? 1 : 0

  endpoint_name              = local.names.endpoint
  framework_image_tag        = var.sklearn_image_tag
  bucket_name                = module.history_bucket.bucket
  program                    = local.stack.model.program
  kms_key_arn                = module.kms.key_arn
  instance_type              = var.endpoint_instance_type
  initial_instance_count     = var.endpoint_initial_instance_count
  serverless_memory_mb       = var.endpoint_serverless_memory_mb
  serverless_max_concurrency = var.endpoint_serverless_max_concurrency

  # Through the artifact check (AWS): the model is not attempted before the check passed.
  model_artifact_key = length(data.aws_s3_objects.model_artifact) == 0 ? local.stack.model.artifact_key : one(data.aws_s3_objects.model_artifact[0].keys)
}
