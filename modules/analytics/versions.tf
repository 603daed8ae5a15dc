terraform {
  # 1.9+: validations that refer to other variables (create needs quicksight_principal_arn).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}
