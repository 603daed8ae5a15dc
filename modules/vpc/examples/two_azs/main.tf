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

  alias_name  = "example-vpc"
  description = "Example key for modules/vpc."
}

module "vpc" {
  source = "../.."

  name                        = "example"
  cidr_block                  = "10.50.0.0/16"
  azs                         = ["${var.aws_region}a", "${var.aws_region}b"]
  nat_gateway_mode            = "single"
  enable_internet_gateway     = true
  interface_endpoint_services = ["kinesis-streams", "logs"]
  flow_logs_kms_key_arn       = module.kms.key_arn
}

output "private_subnet_ids" {
  description = "Private subnets of the example VPC."
  value       = module.vpc.private_subnet_ids
}
