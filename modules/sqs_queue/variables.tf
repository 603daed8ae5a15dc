variable "name" {
  description = "Queue name (1-80 letters, digits, '-' and '_'; no FIFO queues here)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.name))
    error_message = "name must be 1-80 letters, digits, '-' or '_' (standard queues only)."
  }
}

variable "kms_master_key_id" {
  description = "Customer managed KMS key (ARN, id or alias) for server-side encryption."
  type        = string

  validation {
    condition     = length(var.kms_master_key_id) > 0
    error_message = "kms_master_key_id must not be empty: queues are always encrypted with a customer key."
  }
}

variable "message_retention_seconds" {
  description = "How long a message is kept (60 s to 14 days)."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600 && floor(var.message_retention_seconds) == var.message_retention_seconds
    error_message = "message_retention_seconds must be a whole number between 60 and 1209600."
  }
}

variable "deny_insecure_transport" {
  description = "Deny every sqs:* call without TLS (aws:SecureTransport = false) in the queue policy; turn off only for a plain-HTTP emulator."
  type        = bool
  default     = true
}

variable "policy_statements" {
  description = "Extra queue policy statements, in order, before the TLS-only deny (e.g. let a topic send). resources = null means this queue."
  type = list(object({
    sid        = string
    effect     = optional(string, "Allow")
    actions    = list(string)
    resources  = optional(list(string))
    principals = optional(list(object({ type = string, identifiers = list(string) })), [])
    conditions = optional(list(object({ test = string, variable = string, values = list(string) })), [])
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.policy_statements : contains(["Allow", "Deny"], s.effect)])
    error_message = "Each statement's effect must be Allow or Deny."
  }
}

variable "source_policy_documents" {
  description = "Extra policy documents (JSON) merged in before policy_statements; they must name the queue ARN themselves."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the queue (the provider's default_tags are added)."
  type        = map(string)
  default     = null
}
