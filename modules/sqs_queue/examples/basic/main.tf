provider "aws" {
  region = var.aws_region
}

variable "aws_region" {
  description = "Region of the example."
  type        = string
  default     = "us-east-1"
}

data "aws_caller_identity" "current" {}

module "kms" {
  source = "../../../kms_key"

  alias_name  = "example-queue"
  description = "Example key for modules/sqs_queue."
  # SNS must encrypt what it delivers into the KMS-encrypted queue.
  service_principals = ["sns.amazonaws.com"]
}

locals {
  # The topic that may deliver into the queue (any SNS topic of this account).
  topic_arn = "arn:aws:sns:${var.aws_region}:${data.aws_caller_identity.current.account_id}:example-alerts"
}

# A queue SNS delivers into: an allow statement, then the TLS-only deny.
module "inbox" {
  source = "../.."

  name                      = "example-alerts-inbox"
  kms_master_key_id         = module.kms.key_arn
  message_retention_seconds = 345600
  policy_statements = [
    {
      sid        = "AllowAlertsTopic"
      actions    = ["sqs:SendMessage"]
      principals = [{ type = "Service", identifiers = ["sns.amazonaws.com"] }]
      conditions = [{ test = "ArnEquals", variable = "aws:SourceArn", values = [local.topic_arn] }]
    },
  ]
}

# A dead-letter queue: the TLS-only deny only.
module "failures" {
  source = "../.."

  name                      = "example-failures"
  kms_master_key_id         = module.kms.key_arn
  message_retention_seconds = 1209600
}

output "inbox_url" {
  description = "URL of the example inbox queue."
  value       = module.inbox.url
}

output "failures_arn" {
  description = "ARN of the example failure queue."
  value       = module.failures.arn
}
