################################################################################
# Operations: ops topic (KMS), CloudWatch alarms on the streaming path, one dashboard.
#
# Alarms go to the ops topic (not the alerts topic, which carries market alerts for users).
# CloudWatch may use the data key because modules/kms_key grants cloudwatch.amazonaws.com
# (services/main.tf, module "kms"). Log retention is set where each log group is created.
################################################################################

variable "ops_email_subscriptions" {
  description = "E-mail addresses subscribed to the ops topic (alarm notifications). Each must confirm the subscription e-mail."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for e in var.ops_email_subscriptions : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "ops_email_subscriptions must be e-mail addresses."
  }
}

variable "alarm_iterator_age_ms" {
  description = "Alarm when the oldest unread record of the stream is older than this (GetRecords.IteratorAgeMilliseconds, maximum over 5 minutes)."
  type        = number
  default     = 300000

  validation {
    condition     = var.alarm_iterator_age_ms >= 1000
    error_message = "alarm_iterator_age_ms must be at least 1000."
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

  # One entry per alarm: the streaming path from stream to endpoint.
  alarms = merge(
    {
      stream-iterator-age = {
        description = "Records wait too long in the stream: the processor is behind or failing."
        namespace   = "AWS/Kinesis"
        metric      = "GetRecords.IteratorAgeMilliseconds"
        statistic   = "Maximum"
        threshold   = var.alarm_iterator_age_ms
        dimensions  = { StreamName = aws_kinesis_stream.bars.name }
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
        dimensions  = { QueueName = aws_sqs_queue.failures.name }
      }
    },
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
  evaluation_periods  = var.alarm_evaluation_periods
  datapoints_to_alarm = local.datapoints
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
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
            [local.project, "BarsSent", "service", "${local.project}-${local.stack.resources.collector}"],
            [local.project, "BarsAccepted", "service", "${local.project}-${local.stack.resources.processor_function}"],
            [local.project, "DuplicateBars", "service", "${local.project}-${local.stack.resources.processor_function}"],
            [local.project, "LateBars", "service", "${local.project}-${local.stack.resources.processor_function}"],
            [local.project, "MalformedRecords", "service", "${local.project}-${local.stack.resources.processor_function}"],
            [local.project, "AlertsPublished", "service", "${local.project}-${local.stack.resources.processor_function}"],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Endpoint and failure queue"
          region = local.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["AWS/SageMaker", "Invocations", "EndpointName", local.names.endpoint, "VariantName", "primary"],
            ["AWS/SageMaker", "Invocation5XXErrors", "EndpointName", local.names.endpoint, "VariantName", "primary"],
            ["AWS/SageMaker", "ModelLatency", "EndpointName", local.names.endpoint, "VariantName", "primary", { stat = "p95", yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.failures.name, { stat = "Maximum" }],
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
