provider "aws" {
  region = var.aws_region
}

variable "aws_region" {
  description = "Region of the example."
  type        = string
  default     = "us-east-1"
}

module "kms" {
  source = "../../../kms_key"

  alias_name  = "example-table"
  description = "Example key for modules/dynamodb_table."
}

module "results" {
  source = "../.."

  name                   = "example-results"
  hash_key               = "symbol"
  range_key              = "bar_time"
  ttl_attribute          = "expires_at"
  kms_key_arn            = module.kms.key_arn
  point_in_time_recovery = true
  deletion_protection    = false
}

output "table_name" {
  description = "Name of the example table."
  value       = module.results.name
}
