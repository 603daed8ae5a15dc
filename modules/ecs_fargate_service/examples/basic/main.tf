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

  alias_name  = "example-ecs"
  description = "Example key for modules/ecs_fargate_service."
}

resource "aws_ecr_repository" "app" {
  name                 = "example-app"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = true

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.kms.key_arn
  }
}

module "service" {
  source = "../.."

  cluster_name       = "example-cluster"
  name               = "example-app"
  image              = "${aws_ecr_repository.app.repository_url}:0.1.0"
  kms_key_arn        = module.kms.key_arn
  subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  security_group_ids = ["sg-0123456789abcdef0"]
  writable_paths     = ["/tmp"]

  capacity_provider_strategy = [{ capacity_provider = "FARGATE_SPOT", weight = 1 }]
  ecr_repository_arns        = [aws_ecr_repository.app.arn]
}

output "cluster_name" {
  description = "ECS cluster of the example service."
  value       = module.service.cluster_name
}
