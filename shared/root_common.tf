################################################################################
# Shared by the network/ and services/ roots (each has a symlink to this file, so the
# variables and locals every root needs are written once; shared/README.md).
################################################################################

variable "environment" {
  description = "Environment name (local, dev, prod); part of every resource name (<project>-<environment>-<short>)."
  type        = string

  validation {
    condition     = contains(["local", "dev", "prod"], var.environment)
    error_message = "environment must be local, dev or prod."
  }
}

variable "aws_region" {
  description = "AWS region of the stack."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "aws_endpoint_url" {
  description = "Emulator endpoint (e.g. http://127.0.0.1:4566) for the local environment; null for real AWS. scripts/tf.sh sets it from AWS_ENDPOINT_URL for local only."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null || can(regex("^https?://[^/]+/?$", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be null or a scheme://host:port URL."
  }

  validation {
    condition     = (var.environment == "local") == (var.aws_endpoint_url != null)
    error_message = "The local environment needs aws_endpoint_url (the emulator); dev and prod must leave it null."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

locals {
  # Single source of truth for names, keys and the window (see docs/DESIGN.md).
  stack   = jsondecode(file("${path.module}/../stocksage/stack.json"))
  project = local.stack.project

  is_local = var.aws_endpoint_url != null

  tags = merge(var.tags, {
    Project     = local.project
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
