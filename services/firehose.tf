################################################################################
# History: every bar that enters Kinesis lands in S3 (Firehose, Kinesis source).
#
# Layout = stocksage.history.history_key:
#   bars/symbol={SYMBOL}/year={YYYY}/month={MM}/<object>.json.gz   (gzip NDJSON)
# Dynamic partitioning with JQ metadata extraction on the bar's own fields (symbol and the
# UTC bar_time the producers write, "YYYY-MM-DDTHH:MM:SSZ"), a newline after every record
# (AppendDelimiterToRecord), GZIP, the data key. Records JQ cannot partition go to the error
# prefix. Locally the runtime's Firehose worker (stocksage.local.firehose) reads this
# configuration back and delivers in the same layout.
################################################################################

variable "history_buffer_mb" {
  description = "Firehose buffering size in MiB (64-128: dynamic partitioning needs at least 64)."
  type        = number
  default     = 64

  validation {
    condition     = var.history_buffer_mb >= 64 && var.history_buffer_mb <= 128
    error_message = "history_buffer_mb must be between 64 and 128 with dynamic partitioning."
  }
}

variable "history_buffer_seconds" {
  description = "Firehose buffering interval in seconds (0-900)."
  type        = number
  default     = 300

  validation {
    condition     = var.history_buffer_seconds >= 0 && var.history_buffer_seconds <= 900
    error_message = "history_buffer_seconds must be between 0 and 900."
  }
}

locals {
  history_prefix_template = "${trimsuffix(local.stack.lifecycle.history_prefix, "/")}/symbol=!{partitionKeyFromQuery:symbol}/year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/"
  history_error_prefix    = "errors/history/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
}

data "aws_iam_policy_document" "history_delivery_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "history_delivery" {
  name               = local.names.history_delivery
  description        = "Firehose delivery of the bar stream into the S3 history."
  assume_role_policy = data.aws_iam_policy_document.history_delivery_assume.json
}

resource "aws_cloudwatch_log_group" "history_delivery" {
  #checkov:skip=CKV_AWS_338:Retention is a per-environment variable (dev 14, prod 90 days); delivery errors are also kept as objects under errors/history/.
  name              = "/aws/kinesisfirehose/${local.names.history_delivery}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
}

resource "aws_cloudwatch_log_stream" "history_delivery" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.history_delivery.name
}

data "aws_iam_policy_document" "history_delivery" {
  statement {
    sid = "ReadBars"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.bars.arn]
  }

  statement {
    sid       = "FindBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [module.history_bucket.arn]
  }

  statement {
    sid     = "WriteHistory"
    actions = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    resources = [
      "${module.history_bucket.arn}/${local.stack.lifecycle.history_prefix}*",
      "${module.history_bucket.arn}/errors/history/*",
    ]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "WriteDeliveryLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.history_delivery.arn}:*"]
  }
}

resource "aws_iam_role_policy" "history_delivery" {
  name   = "least-privilege"
  role   = aws_iam_role.history_delivery.id
  policy = data.aws_iam_policy_document.history_delivery.json
}

resource "aws_kinesis_firehose_delivery_stream" "history" {
  #checkov:skip=CKV_AWS_240:Server-side encryption settings apply to DirectPut only; a Kinesis-source stream reads the KMS-encrypted stream and writes SSE-KMS objects (kms_key_arn below).
  #checkov:skip=CKV_AWS_241:Same: encryption with the customer key is on the destination (kms_key_arn).
  name        = local.names.history_delivery
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.bars.arn
    role_arn           = aws_iam_role.history_delivery.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.history_delivery.arn
    bucket_arn          = module.history_bucket.arn
    prefix              = local.history_prefix_template
    error_output_prefix = local.history_error_prefix
    buffering_size      = var.history_buffer_mb
    buffering_interval  = var.history_buffer_seconds
    compression_format  = "GZIP"
    file_extension      = ".json.gz"
    kms_key_arn         = module.kms.key_arn

    dynamic_partitioning_configuration {
      enabled = true
    }

    processing_configuration {
      enabled = true

      processors {
        type = "MetadataExtraction"

        parameters {
          parameter_name  = "MetadataExtractionQuery"
          parameter_value = "{symbol: (.symbol | ascii_upcase), year: .bar_time[0:4], month: .bar_time[5:7]}"
        }

        parameters {
          parameter_name  = "JsonParsingEngine"
          parameter_value = "JQ-1.6"
        }
      }

      processors {
        type = "AppendDelimiterToRecord"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.history_delivery.name
      log_stream_name = aws_cloudwatch_log_stream.history_delivery.name
    }
  }

  depends_on = [aws_iam_role_policy.history_delivery]
}

output "history_delivery_stream_name" {
  description = "Firehose delivery stream of the bar history (Kinesis -> S3 bars/)."
  value       = aws_kinesis_firehose_delivery_stream.history.name
}
