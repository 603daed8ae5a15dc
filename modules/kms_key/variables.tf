variable "alias_name" {
  description = "Alias of the key, without the \"alias/\" prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]+$", var.alias_name)) && !startswith(var.alias_name, "alias/") && !startswith(var.alias_name, "aws/")
    error_message = "alias_name may hold letters, digits, '/', '_' and '-' and must not start with alias/ or aws/."
  }
}

variable "description" {
  description = "Human description of what the key protects."
  type        = string
}

variable "enable_key_rotation" {
  description = "Rotate the key material automatically (keep true outside experiments)."
  type        = bool
  default     = true
}

variable "rotation_period_in_days" {
  description = "Days between automatic rotations (90-2560); null keeps the AWS default (365)."
  type        = number
  default     = null

  validation {
    condition     = var.rotation_period_in_days == null || (coalesce(var.rotation_period_in_days, 365) >= 90 && coalesce(var.rotation_period_in_days, 365) <= 2560)
    error_message = "rotation_period_in_days must be between 90 and 2560."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion takes effect (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "allow_cloudwatch_logs" {
  description = "Let CloudWatch Logs in this region encrypt log groups of this account with the key."
  type        = bool
  default     = true
}

variable "service_principals" {
  description = "Service principals (e.g. sns.amazonaws.com) allowed kms:Decrypt and kms:GenerateDataKey* for resources of this account, such as SNS delivering to a KMS-encrypted SQS queue."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.service_principals : endswith(p, ".amazonaws.com")])
    error_message = "service_principals must be AWS service principals ending in .amazonaws.com."
  }
}

variable "service_source_arns" {
  description = "Service principal -> ARNs of the resources it acts for (aws:SourceArn, ArnLike). A principal listed here may use data keys only for these resources instead of for any resource of the account (aws:SourceAccount): EventBridge rule dead-letter deliveries carry the rule's ARN, not always the account."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for p, arns in var.service_source_arns : endswith(p, ".amazonaws.com") && length(arns) > 0 && alltrue([for a in arns : startswith(a, "arn:")])])
    error_message = "service_source_arns maps AWS service principals (*.amazonaws.com) to non-empty lists of ARNs."
  }
}

variable "tags" {
  description = "Tags for the key."
  type        = map(string)
  default     = {}
}
