provider "aws" {
  region = var.aws_region
}

variable "aws_region" {
  description = "Region of the example."
  type        = string
  default     = "us-east-1"
}

module "kms" {
  source = "../.."

  alias_name              = "example-data"
  description             = "Data key of the example stack: tables, queues, logs."
  deletion_window_in_days = 7
  # SNS -> KMS-encrypted SQS, alarms -> KMS-encrypted SNS, EventBridge -> KMS-encrypted DLQ.
  service_principals = ["sns.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"]
  # EventBridge only for the rule whose dead letters go to the encrypted queue.
  service_source_arns = {
    "events.amazonaws.com" = ["arn:aws:events:us-east-1:123456789012:rule/example-training-state"]
  }
}

output "key_arn" {
  description = "ARN of the example key."
  value       = module.kms.key_arn
}
