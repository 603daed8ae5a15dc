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

  alias_name  = "example-endpoint"
  description = "Example key for modules/sagemaker_endpoint."
}

module "bucket" {
  source = "../../../s3_bucket"

  bucket        = "example-models-${data.aws_caller_identity.current.account_id}-${var.aws_region}"
  kms_key_arn   = module.kms.key_arn
  force_destroy = true
}

# Serverless Inference (instance_type = null) with the pinned scikit-learn framework image.
module "endpoint" {
  source = "../.."

  endpoint_name       = "example-predictor"
  framework_image_tag = "1.9-0-cpu-py3"
  bucket_name         = module.bucket.bucket
  model_artifact_key  = "model-artifacts/initial/model.tar.gz"
  kms_key_arn         = module.kms.key_arn
  instance_type       = null
}

output "endpoint_name" {
  description = "Name of the example endpoint."
  value       = module.endpoint.endpoint_name
}
