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

  alias_name  = "example-lambda"
  description = "Example key for modules/lambda_function."
}

module "function" {
  source = "../.."

  function_name = "example-worker"
  description   = "Example function of modules/lambda_function."
  runtime       = "python3.12"
  handler       = "app.lambda_handler"
  # Build it first, e.g. (cd src && zip -r ../function.zip .); terraform validate does not read it.
  zip_path    = "${path.module}/function.zip"
  kms_key_arn = module.kms.key_arn

  environment_variables = { LOG_LEVEL = "INFO" }
}

output "function_name" {
  description = "Name of the example function."
  value       = module.function.function_name
}
