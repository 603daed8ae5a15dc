################################################################################
# Firehose delivery stream into S3 (extended_s3) with its delivery role: a Kinesis data
# stream source (kinesis_source_stream_arn) or DirectPut; SSE-KMS objects with the customer
# key; delivery errors logged to a KMS-encrypted log group (stream "S3Delivery") and kept as
# objects under error_output_prefix. The role may read the source stream, find the bucket,
# write under write_prefixes only, use the key and write its delivery logs.
################################################################################

data "aws_caller_identity" "current" {}

locals {
  kinesis_source = var.kinesis_source_stream_arn != null
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  description        = var.role_description
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the caller's per-environment variable (dev 14, prod 90 days); delivery errors are also kept as objects under error_output_prefix.
  name              = "/aws/kinesisfirehose/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "this" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.this.name
}

data "aws_iam_policy_document" "this" {
  dynamic "statement" {
    for_each = local.kinesis_source ? [var.kinesis_source_stream_arn] : []

    content {
      sid = "ReadBars"
      actions = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "FindBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = var.write_statement_sid
    actions   = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    resources = [for prefix in var.write_prefixes : "${var.bucket_arn}/${prefix}*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteDeliveryLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  #checkov:skip=CKV_AWS_240:Server-side encryption settings apply to DirectPut only (set below for DirectPut); a Kinesis-source stream reads the KMS-encrypted stream and writes SSE-KMS objects (kms_key_arn).
  #checkov:skip=CKV_AWS_241:Same: with a Kinesis source the customer key encrypts at the destination (kms_key_arn); DirectPut streams also get SSE with it.
  name        = var.name
  destination = "extended_s3"

  dynamic "kinesis_source_configuration" {
    for_each = local.kinesis_source ? [var.kinesis_source_stream_arn] : []

    content {
      kinesis_stream_arn = kinesis_source_configuration.value
      role_arn           = aws_iam_role.this.arn
    }
  }

  dynamic "server_side_encryption" {
    for_each = local.kinesis_source ? [] : [var.kms_key_arn]

    content {
      enabled  = true
      key_type = "CUSTOMER_MANAGED_CMK"
      key_arn  = server_side_encryption.value
    }
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.this.arn
    bucket_arn          = var.bucket_arn
    prefix              = var.prefix
    error_output_prefix = var.error_output_prefix
    buffering_size      = var.buffering_size_mb
    buffering_interval  = var.buffering_interval_seconds
    compression_format  = var.compression_format
    file_extension      = var.file_extension
    kms_key_arn         = var.kms_key_arn

    dynamic "dynamic_partitioning_configuration" {
      for_each = var.dynamic_partitioning ? [1] : []

      content {
        enabled = true
      }
    }

    dynamic "processing_configuration" {
      for_each = length(var.processors) > 0 ? [1] : []

      content {
        enabled = true

        dynamic "processors" {
          for_each = var.processors

          content {
            type = processors.value.type

            dynamic "parameters" {
              for_each = processors.value.parameters

              content {
                parameter_name  = parameters.value.name
                parameter_value = parameters.value.value
              }
            }
          }
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.this.name
      log_stream_name = aws_cloudwatch_log_stream.this.name
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
