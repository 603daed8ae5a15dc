################################################################################
# SQS queue, SSE-KMS with a customer key, and its queue policy: the statements the caller
# gives (their resources default to this queue) followed by a TLS-only deny
# (aws:SecureTransport = false), unless turned off for a plain-HTTP emulator. No policy is
# attached when there is nothing to put in it.
################################################################################

resource "aws_sqs_queue" "this" {
  name                      = var.name
  kms_master_key_id         = var.kms_master_key_id
  message_retention_seconds = var.message_retention_seconds
  tags                      = var.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.source_policy_documents

  dynamic "statement" {
    for_each = var.policy_statements

    content {
      sid       = statement.value.sid
      effect    = statement.value.effect
      actions   = statement.value.actions
      resources = statement.value.resources != null ? statement.value.resources : [aws_sqs_queue.this.arn]

      dynamic "principals" {
        for_each = statement.value.principals

        content {
          type        = principals.value.type
          identifiers = principals.value.identifiers
        }
      }

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

  dynamic "statement" {
    for_each = var.deny_insecure_transport ? [1] : []

    content {
      sid       = "DenyInsecureTransport"
      effect    = "Deny"
      actions   = ["sqs:*"]
      resources = [aws_sqs_queue.this.arn]

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

resource "aws_sqs_queue_policy" "this" {
  count = var.deny_insecure_transport || length(var.policy_statements) > 0 || length(var.source_policy_documents) > 0 ? 1 : 0

  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.this.json
}
