################################################################################
# Operations: ops topic (KMS), CloudWatch alarms on the streaming path, one dashboard.
#
# Alarms go to the ops topic (not the alerts topic, which carries market alerts for users).
# CloudWatch may use the data key because modules/kms_key grants cloudwatch.amazonaws.com
# (services/main.tf, module "kms"). Log retention is set where each log group is created.
################################################################################

variable "ops_email_subscriptions" {
  description = "E-mail addresses subscribed to the ops topic (alarm notifications). Each must confirm the subscription e-mail. prod needs at least one: alarms nobody receives are no alarms."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.ops_email_subscriptions : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "ops_email_subscriptions must be e-mail addresses."
  }

  validation {
    condition     = var.environment != "prod" || length(var.ops_email_subscriptions) > 0
    error_message = "prod needs at least one ops_email_subscriptions address (set it in services/envs/prod.tfvars): alarms must reach someone."
  }
}

variable "alarm_iterator_age_ms" {
  description = "Alarm when the processor reads records older than this (AWS/Lambda IteratorAge of its event source mapping, maximum over 5 minutes)."
  type        = number
  default     = 300000

  validation {
    condition     = var.alarm_iterator_age_ms >= 1000
    error_message = "alarm_iterator_age_ms must be at least 1000."
  }
}

variable "alarm_failure_queue_age_seconds" {
  description = "Alarm when the oldest message of the processor failure queue is older than this (ApproximateAgeOfOldestMessage): failures nobody has looked at."
  type        = number
  default     = 86400

  validation {
    condition     = var.alarm_failure_queue_age_seconds >= 300 && var.alarm_failure_queue_age_seconds <= 1209600
    error_message = "alarm_failure_queue_age_seconds must be between 300 and 1209600 (the queue's retention)."
  }
}

variable "alarm_history_freshness_seconds" {
  description = "Alarm when the oldest record not yet delivered to the S3 history is older than this (Firehose DeliveryToS3.DataFreshness); must exceed history_buffer_seconds."
  type        = number
  default     = 1800

  validation {
    condition     = var.alarm_history_freshness_seconds >= 300
    error_message = "alarm_history_freshness_seconds must be at least 300."
  }
}

variable "alarm_evaluation_periods" {
  description = "5-minute periods an alarm looks at; it fires when 2 of them (or all, when fewer) breach."
  type        = number
  default     = 3

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && var.alarm_evaluation_periods <= 24
    error_message = "alarm_evaluation_periods must be between 1 and 24."
  }
}

locals {
  ops_topic_name = "${local.project}-${var.environment}-ops"
  alarm_prefix   = "${local.project}-${var.environment}"
  datapoints     = min(2, var.alarm_evaluation_periods)

  processor_service = "${local.project}-${local.stack.resources.processor_function}"
  collector_service = "${local.project}-${local.stack.resources.collector}"

  # One entry per alarm (scripts/cost.py counts the `namespace =` lines below). Optional keys:
  # comparison (GreaterThanThreshold), missing (notBreaching), periods / datapoints
  # (alarm_evaluation_periods / 2 of them).
  alarms = merge(
    {
      processor-iterator-age = {
        description = "Records wait too long before the processor reads them (IteratorAge of its event source mapping): it is behind or failing."
        namespace   = "AWS/Lambda"
        metric      = "IteratorAge"
        statistic   = "Maximum"
        threshold   = var.alarm_iterator_age_ms
        dimensions  = { FunctionName = module.processor.function_name }
      }
      processor-errors = {
        description = "The processor Lambda raised errors (whole-batch failures; item failures are retried by the event source mapping)."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        statistic   = "Sum"
        threshold   = 0
        dimensions  = { FunctionName = module.processor.function_name }
      }
      processor-throttles = {
        description = "The processor Lambda was throttled (account or reserved concurrency)."
        namespace   = "AWS/Lambda"
        metric      = "Throttles"
        statistic   = "Sum"
        threshold   = 0
        dimensions  = { FunctionName = module.processor.function_name }
      }
      failure-queue-depth = {
        description = "Messages wait in the failure queue: quarantined malformed records or batches that exhausted their retries."
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        statistic   = "Maximum"
        threshold   = 0
        dimensions  = { QueueName = module.failures_queue.name }
      }
      failure-queue-age = {
        description = "The oldest message of the failure queue has waited longer than alarm_failure_queue_age_seconds: nobody is handling the failures."
        namespace   = "AWS/SQS"
        metric      = "ApproximateAgeOfOldestMessage"
        statistic   = "Maximum"
        threshold   = var.alarm_failure_queue_age_seconds
        dimensions  = { QueueName = module.failures_queue.name }
      }
      retrain-errors = {
        description = "The retrain Lambda failed (asynchronous: retried twice, then the event goes to the lifecycle failure queue)."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
        datapoints  = 1
        dimensions  = { FunctionName = module.lifecycle_function["retrain"].function_name }
      }
      promote-errors = {
        description = "The promote Lambda failed (asynchronous: retried twice, then the event goes to the lifecycle failure queue)."
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        statistic   = "Sum"
        threshold   = 0
        periods     = 1
        datapoints  = 1
        dimensions  = { FunctionName = module.lifecycle_function["promote"].function_name }
      }
      lifecycle-failures = {
        description = "A retrain/promote invocation failed for good, or a schedule tick / training-state event could not be delivered (lifecycle failure queue)."
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        statistic   = "Maximum"
        threshold   = 0
        periods     = 1
        datapoints  = 1
        dimensions  = { QueueName = module.lifecycle_failures_queue.name }
      }
      history-freshness = {
        description = "Bars take longer than alarm_history_freshness_seconds to reach the S3 history (Firehose DeliveryToS3.DataFreshness): delivery is failing or behind."
        namespace   = "AWS/Firehose"
        metric      = "DeliveryToS3.DataFreshness"
        statistic   = "Maximum"
        threshold   = var.alarm_history_freshness_seconds
        dimensions  = { DeliveryStreamName = module.history_delivery.name }
      }
      # Emitted by the processor after every batch (Powertools, dimension service); Minimum > 0
      # in three 5-minute periods in a row = never drained for 15 minutes.
      pending-predictions = {
        description = "Results have waited for a model prediction for 15+ minutes (PendingPredictions > 0 after every batch): the endpoint is failing or missing."
        namespace   = local.project
        metric      = "PendingPredictions"
        statistic   = "Minimum"
        threshold   = 0
        periods     = 3
        datapoints  = 3
        dimensions  = { service = local.processor_service }
      }
      pending-alerts = {
        description = "Alerts have waited in the outbox for 15+ minutes (PendingAlerts > 0 after every batch): publishing to SNS is failing."
        namespace   = local.project
        metric      = "PendingAlerts"
        statistic   = "Minimum"
        threshold   = 0
        periods     = 3
        datapoints  = 3
        dimensions  = { service = local.processor_service }
      }
    },
    # The collector emits PollErrors (0 or 1) after every poll: its sample count is a heartbeat.
    # No data means no collector, so missing data breaches.
    local.collector_runs ? {
      collector-heartbeat = {
        description = "The collector sent no heartbeat (PollErrors samples, one per poll) for 10 minutes: no task runs, or it hangs."
        namespace   = local.project
        metric      = "PollErrors"
        statistic   = "SampleCount"
        threshold   = 1
        comparison  = "LessThanThreshold"
        missing     = "breaching"
        periods     = 2
        datapoints  = 2
        dimensions  = { service = local.collector_service }
      }
    } : {},
    var.create_endpoint ? {
      endpoint-5xx = {
        description = "The SageMaker endpoint answered 5xx (the processor's batches fail and are retried)."
        namespace   = "AWS/SageMaker"
        metric      = "Invocation5XXErrors"
        statistic   = "Sum"
        threshold   = 0
        dimensions  = { EndpointName = local.names.endpoint, VariantName = "primary" }
      }
      endpoint-model-errors = {
        description = "The model raised errors inside the endpoint (InvocationModelErrors)."
        namespace   = "AWS/SageMaker"
        metric      = "InvocationModelErrors"
        statistic   = "Sum"
        threshold   = 0
        dimensions  = { EndpointName = local.names.endpoint, VariantName = "primary" }
      }
    } : {},
  )
}

resource "aws_sns_topic" "ops" {
  name              = local.ops_topic_name
  kms_master_key_id = module.kms.key_arn
}

data "aws_iam_policy_document" "ops_topic" {
  statement {
    sid       = "AllowAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.ops.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  dynamic "statement" {
    for_each = local.deny_insecure_transport ? [1] : []

    content {
      sid       = "DenyInsecureTransport"
      effect    = "Deny"
      actions   = ["sns:Publish", "sns:Subscribe", "sns:Receive"]
      resources = [aws_sns_topic.ops.arn]

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
}

resource "aws_sns_topic_policy" "ops" {
  arn    = aws_sns_topic.ops.arn
  policy = data.aws_iam_policy_document.ops_topic.json
}

resource "aws_sns_topic_subscription" "ops_email" {
  for_each = toset(var.ops_email_subscriptions)

  topic_arn = aws_sns_topic.ops.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${local.alarm_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  dimensions          = each.value.dimensions
  period              = 300
  evaluation_periods  = try(each.value.periods, var.alarm_evaluation_periods)
  datapoints_to_alarm = try(each.value.datapoints, local.datapoints)
  threshold           = each.value.threshold
  comparison_operator = try(each.value.comparison, "GreaterThanThreshold")
  treat_missing_data  = try(each.value.missing, "notBreaching")
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.alarm_prefix
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Stream: records in, iterator age"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", aws_kinesis_stream.bars.name],
            ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", aws_kinesis_stream.bars.name, { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Processor: invocations, errors, throttles, duration"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", module.processor.function_name],
            ["AWS/Lambda", "Errors", "FunctionName", module.processor.function_name],
            ["AWS/Lambda", "Throttles", "FunctionName", module.processor.function_name],
            ["AWS/Lambda", "Duration", "FunctionName", module.processor.function_name, { stat = "p95", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Bars (Powertools EMF): collected, accepted, duplicates, late, malformed"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            [local.project, "BarsSent", "service", local.collector_service],
            [local.project, "BarsAccepted", "service", local.processor_service],
            [local.project, "DuplicateBars", "service", local.processor_service],
            [local.project, "LateBars", "service", local.processor_service],
            [local.project, "MalformedRecords", "service", local.processor_service],
            [local.project, "AlertsPublished", "service", local.processor_service],
            [local.project, "PendingPredictions", "service", local.processor_service, { stat = "Maximum", yAxis = "right" }],
            [local.project, "PendingAlerts", "service", local.processor_service, { stat = "Maximum", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Endpoint and failure queues"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["AWS/SageMaker", "Invocations", "EndpointName", local.names.endpoint, "VariantName", "primary"],
            ["AWS/SageMaker", "Invocation5XXErrors", "EndpointName", local.names.endpoint, "VariantName", "primary"],
            ["AWS/SageMaker", "ModelLatency", "EndpointName", local.names.endpoint, "VariantName", "primary", { stat = "p95", yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.failures_queue.name, { stat = "Maximum" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.lifecycle_failures_queue.name, { stat = "Maximum" }],
          ]
        }
      },
      {
        type = "alarm", x = 0, y = 12, width = 24, height = 3
        properties = {
          title  = "Alarms"
          alarms = [for a in aws_cloudwatch_metric_alarm.this : a.arn]
        }
      },
    ]
  })
}
