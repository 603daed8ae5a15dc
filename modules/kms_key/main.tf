data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  # Conditioned on the account unless bound to source ARNs (var.service_source_arns).
  account_principals = [for p in var.service_principals : p if !contains(keys(var.service_source_arns), p)]
}

data "aws_iam_policy_document" "this" {
  #checkov:skip=CKV_AWS_111:Key policy: the root-account delegation statement (kms:* on the key itself, '*' means this key) is what lets IAM policies grant use; AWS's default key policy.
  #checkov:skip=CKV_AWS_356:Key policy: in a key policy the resource '*' is the key itself.
  #checkov:skip=CKV_AWS_109:Key policy: the account root delegation is AWS's default key policy; without it the key becomes unmanageable.
  # Standard delegation: IAM policies in this account decide who may use the key.
  statement {
    sid       = "EnableIamPolicies"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = var.allow_cloudwatch_logs ? [1] : []

    content {
      sid       = "AllowCloudWatchLogs"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${local.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(local.account_principals) > 0 ? [1] : []

    content {
      sid       = "AllowServicesDataKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = local.account_principals
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  # Principals bound to the resources they act for (var.service_source_arns).
  dynamic "statement" {
    for_each = var.service_source_arns

    content {
      sid       = "AllowDataKeysFor${replace(title(replace(split(".", statement.key)[0], "-", " ")), " ", "")}"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = [statement.key]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = statement.value
      }
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = var.enable_key_rotation
  rotation_period_in_days = var.enable_key_rotation ? var.rotation_period_in_days : null
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.this.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias_name}"
  target_key_id = aws_kms_key.this.key_id
}
