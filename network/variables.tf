# environment, aws_region, aws_endpoint_url, tags: root_common.tf (shared with services/).

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

variable "collector_subnet_tier" {
  description = "Where the collector runs: private (no public IP; internet through the NAT gateway, prod) or public (public subnet with a public IPv4 and an HTTPS-only egress security group, no NAT: the cheap dev setup, docs/COST.md)."
  type        = string
  default     = "private"

  validation {
    condition     = contains(["private", "public"], var.collector_subnet_tier)
    error_message = "collector_subnet_tier must be private or public."
  }

  validation {
    condition     = var.collector_subnet_tier == "public" || var.nat_gateway_mode != "none" || var.environment == "local"
    error_message = "A collector in private subnets needs a NAT gateway (the market-data API is on the internet): set nat_gateway_mode or collector_subnet_tier = \"public\"."
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
