variable "environment" {
  description = "Environment name (local, dev, prod); part of every resource name."
  type        = string

  validation {
    condition     = contains(["local", "dev", "prod"], var.environment)
    error_message = "environment must be local, dev or prod."
  }
}

variable "aws_region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "aws_endpoint_url" {
  description = "Emulator endpoint for the local environment; null for real AWS (scripts/tf.sh sets it from AWS_ENDPOINT_URL for local only)."
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
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "cidr_block" {
  description = "VPC IPv4 CIDR."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0))
    error_message = "cidr_block must be a valid IPv4 CIDR."
  }
}

variable "azs" {
  description = "Two availability zones; null picks the first two available in the region."
  type        = list(string)
  default     = null

  validation {
    condition     = var.azs == null || length(coalesce(var.azs, ["a", "b"])) == 2
    error_message = "azs must be null or exactly two zones."
  }
}

variable "nat_gateway_mode" {
  description = "none | single | per_az (see modules/vpc)."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["none", "single", "per_az"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be none, single or per_az."
  }
}

variable "interface_endpoint_services" {
  description = "Interface endpoints in the private subnets (e.g. kinesis-streams, ecr.api, ecr.dkr, logs, secretsmanager: what the collector calls). Empty: traffic to those APIs goes through the NAT."
  type        = list(string)
  default     = []
}

variable "enable_flow_logs" {
  description = "VPC flow logs to CloudWatch Logs."
  type        = bool
  default     = true
}

variable "flow_logs_retention_days" {
  description = "Flow log retention in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the network key is deleted (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}
