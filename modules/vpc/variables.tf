variable "name" {
  description = "Name of the VPC; prefixes the names of its parts."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0))
    error_message = "cidr_block must be a valid IPv4 CIDR."
  }
}

variable "azs" {
  description = "Availability zones (exactly 2 here: one public and one private subnet in each)."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 2 && length(distinct(var.azs)) == 2
    error_message = "Give exactly two distinct availability zones."
  }
}

variable "subnet_newbits" {
  description = "Bits added to the VPC prefix for each subnet (4 on a /16 gives /20 subnets)."
  type        = number
  default     = 4

  validation {
    condition     = var.subnet_newbits >= 2 && var.subnet_newbits <= 12
    error_message = "subnet_newbits must be between 2 and 12."
  }
}

variable "nat_gateway_mode" {
  description = "NAT for private subnets: none (no internet egress; endpoints only), single (one NAT, cheaper) or per_az (one per AZ, no cross-AZ dependency)."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["none", "single", "per_az"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be none, single or per_az."
  }
}

variable "enable_internet_gateway" {
  description = "Create the internet gateway and the public route. Required by NAT gateways and by tasks with public IPs in the public subnets; false leaves the VPC without any internet path."
  type        = bool
  default     = true

  validation {
    condition     = var.enable_internet_gateway || var.nat_gateway_mode == "none"
    error_message = "NAT gateways need the internet gateway: enable_internet_gateway = true or nat_gateway_mode = \"none\"."
  }
}

variable "interface_endpoint_services" {
  description = "Interface endpoint service suffixes (e.g. kinesis-streams, sagemaker.runtime, sns, sqs, logs, sts, kms, ecr.api, ecr.dkr); empty for none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9.-]+$", s)) && !contains(["s3", "dynamodb"], s)])
    error_message = "Interface endpoint services are lower-case suffixes; s3 and dynamodb are gateway endpoints already."
  }
}

variable "enable_flow_logs" {
  description = "Send VPC flow logs to CloudWatch Logs."
  type        = bool
  default     = true
}

variable "flow_logs_traffic_type" {
  description = "Flow log traffic: ACCEPT, REJECT or ALL."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_logs_traffic_type)
    error_message = "flow_logs_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "flow_logs_retention_days" {
  description = "Retention of the flow log group in days."
  type        = number
  default     = 30
}

variable "flow_logs_kms_key_arn" {
  description = "KMS key of the flow log group (null for default encryption)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
