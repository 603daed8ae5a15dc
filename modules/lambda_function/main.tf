data "aws_caller_identity" "current" {}

locals {
  log_group_name = "/aws/lambda/${var.function_name}"

  kinesis_sources = { for k, v in var.kinesis_event_sources : k => v }

  # Reading a Kinesis stream by ARN (no enhanced fan-out consumer).
  kinesis_read_actions = [
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
  ]

  # Every failure destination (event source mappings and asynchronous invocations), split by
  # type: an SQS destination needs sqs:SendMessage, an SNS destination sns:Publish.
  failure_destination_arns = distinct(compact(concat(
    [for s in values(local.kinesis_sources) : s.on_failure_destination_arn],
    [var.async_on_failure_destination_arn],
  )))
  on_failure_queue_arns = [for arn in local.failure_destination_arns : arn if split(":", arn)[2] == "sqs"]
  on_failure_topic_arns = [for arn in local.failure_destination_arns : arn if split(":", arn)[2] == "sns"]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Confused-deputy guard: only Lambda acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.function_name
  description          = "Execution role of the ${var.function_name} Lambda function."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.role_permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(local.kinesis_sources) > 0 ? [1] : []

    content {
      sid       = "ReadKinesisSources"
      actions   = local.kinesis_read_actions
      resources = distinct([for s in values(local.kinesis_sources) : s.stream_arn])
    }
  }

  dynamic "statement" {
    for_each = length(local.on_failure_queue_arns) > 0 ? [1] : []

    content {
      sid       = "SendToOnFailureQueue"
      actions   = ["sqs:SendMessage"]
      resources = local.on_failure_queue_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.on_failure_topic_arns) > 0 ? [1] : []

    content {
      sid       = "PublishToOnFailureTopic"
      actions   = ["sns:Publish"]
      resources = local.on_failure_topic_arns
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseDataKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []

    content {
      sid = "WriteTraces"
      # X-Ray trace APIs have no resource-level permissions.
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements

    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is a per-environment variable (dev 14, prod 90 days); a year of CloudWatch Logs costs more than the data is worth, and bars/results live in S3/DynamoDB.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Failures are captured by on-failure destinations, which AWS recommends over a function DLQ: event-source-mapping batches by the mapping's destination (a DLQ never sees them), asynchronous invocations by aws_lambda_function_event_invoke_config below (var.async_on_failure_destination_arn; the record carries request, response and error, a DLQ only the event).
  #checkov:skip=CKV_AWS_117:Calls only regional AWS APIs (Kinesis, DynamoDB, SageMaker runtime, SNS, SQS) and no VPC resource; a VPC attachment would add NAT or five interface endpoints for no isolation gain.
  #checkov:skip=CKV_AWS_272:The zip is built reproducibly from the repository and pinned by source_code_hash; AWS Signer code signing is a possible hardening step, not set up here.
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  runtime                        = var.runtime
  handler                        = var.handler
  architectures                  = [var.architecture]
  filename                       = var.zip_path
  source_code_hash               = filebase64sha256(var.zip_path)
  layers                         = var.layers
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment_variables
  }

  tracing_config {
    mode = var.tracing_mode
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

resource "aws_lambda_event_source_mapping" "kinesis" {
  for_each = local.kinesis_sources

  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = each.value.stream_arn
  starting_position                  = each.value.starting_position
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_in_seconds
  parallelization_factor             = each.value.parallelization_factor
  bisect_batch_on_function_error     = each.value.bisect_batch_on_function_error
  maximum_retry_attempts             = each.value.maximum_retry_attempts
  maximum_record_age_in_seconds      = each.value.maximum_record_age_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  enabled                            = each.value.enabled

  dynamic "destination_config" {
    for_each = each.value.on_failure_destination_arn == null ? [] : [each.value.on_failure_destination_arn]

    content {
      on_failure {
        destination_arn = destination_config.value
      }
    }
  }

  depends_on = [aws_iam_role_policy.this]
}

# Asynchronous invocations (EventBridge, Scheduler): bounded retries, then the event with its
# error context goes to the on-failure destination instead of being dropped silently.
resource "aws_lambda_function_event_invoke_config" "this" {
  count = var.create_async_event_config ? 1 : 0

  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_maximum_retry_attempts
  maximum_event_age_in_seconds = var.async_maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = var.async_on_failure_destination_arn
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
