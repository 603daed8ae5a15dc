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

  alias_name  = "example-bucket"
  description = "Example key for modules/s3_bucket."
}

module "bucket" {
  source = "../.."

  bucket                             = "example-archive-${data.aws_caller_identity.current.account_id}-${var.aws_region}"
  kms_key_arn                        = module.kms.key_arn
  force_destroy                      = true
  noncurrent_version_expiration_days = 30
  lifecycle_rules = [
    { id = "objects-to-ia", prefix = "objects/", transition_days = 30, storage_class = "STANDARD_IA" },
    { id = "expire-tmp", prefix = "tmp/", expiration_days = 1 },
  ]
}

output "bucket" {
  description = "Name of the example bucket."
  value       = module.bucket.bucket
}
