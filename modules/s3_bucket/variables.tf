variable "bucket" {
  description = "Bucket name (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "Bucket names are 3-63 lower-case letters, digits, '.' and '-'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for default SSE-KMS encryption."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "force_destroy" {
  description = "Delete all objects (and versions) on destroy. Only for throw-away environments."
  type        = bool
  default     = false
}

variable "versioning" {
  description = "Keep object versions."
  type        = bool
  default     = true
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions are deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

variable "lifecycle_rules" {
  description = "Extra per-prefix rules: optional transition to storage_class after transition_days, optional expiration after expiration_days."
  type = list(object({
    id              = string
    prefix          = string
    transition_days = optional(number)
    storage_class   = optional(string, "STANDARD_IA")
    expiration_days = optional(number)
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.lifecycle_rules : contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], r.storage_class)])
    error_message = "storage_class must be a valid S3 transition storage class."
  }
}

variable "deny_insecure_transport" {
  description = "Attach a bucket policy denying every request not made over TLS (aws:SecureTransport). Only the local emulator, which speaks plain HTTP and evaluates bucket policies, turns it off."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
