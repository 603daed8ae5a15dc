variable "function_name" {
  description = "Name of the function (also its IAM role and /aws/lambda/<name> log group)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 letters, digits, '-' or '_'."
  }
}

variable "description" {
  description = "Function description."
  type        = string
  default     = ""
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.(1[0-9])$", var.runtime))
    error_message = "Only python3.1x runtimes are supported by this module."
  }
}

variable "handler" {
  description = "Handler as module.function (e.g. lambdas.processor.lambda_handler)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.]*\\.[A-Za-z_][A-Za-z0-9_]*$", var.handler))
    error_message = "handler must look like package.module.function."
  }
}

variable "architecture" {
  description = "Instruction set: x86_64 or arm64 (layers must match)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "zip_path" {
  description = "Path of the deployment package (.zip). Its SHA-256 becomes source_code_hash, so a rebuild with identical content changes nothing."
  type        = string

  validation {
    condition     = endswith(var.zip_path, ".zip")
    error_message = "zip_path must point to a .zip file."
  }
}

variable "layers" {
  description = "Layer version ARNs (at most 5)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.layers) <= 5
    error_message = "A function can use at most 5 layers."
  }
}

variable "memory_size" {
  description = "Memory in MB (128-10240)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds (1-900)."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency; -1 for none."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrent_executions >= -1
    error_message = "reserved_concurrent_executions must be -1 or more."
  }
}

variable "environment_variables" {
  description = "Environment of the function (no secrets: values are visible in the console and state)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key encrypting the environment and the log group; the role may Decrypt/GenerateDataKey with it. Null for AWS-managed keys."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the function's log group in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing: PassThrough or Active (Active adds the X-Ray write permissions)."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "policy_statements" {
  description = "Extra least-privilege statements for the execution role, keyed by Sid (letters and digits): exact actions on exact resources, optional conditions (test, variable, values)."
  type = map(object({
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for k, v in var.policy_statements : can(regex("^[A-Za-z0-9]+$", k)) && length(v.actions) > 0 && length(v.resources) > 0])
    error_message = "Keys must be alphanumeric Sids; every statement needs actions and resources."
  }

  validation {
    condition     = alltrue(flatten([for v in values(var.policy_statements) : [for a in v.actions : !strcontains(a, "*")]]))
    error_message = "Wildcard actions are not allowed: name each action."
  }
}

variable "kinesis_event_sources" {
  description = "Kinesis event source mappings keyed by a label. Each uses ReportBatchItemFailures; retries and record age are bounded; failures go to on_failure_destination_arn (SQS or SNS ARN). The role gets read access to each stream and sqs:SendMessage or sns:Publish on each destination, by its type."
  type = map(object({
    stream_arn                         = string
    starting_position                  = optional(string, "TRIM_HORIZON")
    batch_size                         = optional(number, 100)
    maximum_batching_window_in_seconds = optional(number, 1)
    parallelization_factor             = optional(number, 1)
    bisect_batch_on_function_error     = optional(bool, true)
    maximum_retry_attempts             = optional(number, 3)
    maximum_record_age_in_seconds      = optional(number, 3600)
    on_failure_destination_arn         = optional(string)
    enabled                            = optional(bool, true)
  }))
  default = {}

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : contains(["TRIM_HORIZON", "LATEST"], s.starting_position)])
    error_message = "starting_position must be TRIM_HORIZON or LATEST."
  }

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : s.batch_size >= 1 && s.batch_size <= 10000])
    error_message = "batch_size must be between 1 and 10000."
  }

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : s.maximum_batching_window_in_seconds >= 0 && s.maximum_batching_window_in_seconds <= 300])
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : s.parallelization_factor >= 1 && s.parallelization_factor <= 10])
    error_message = "parallelization_factor must be between 1 and 10."
  }

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : s.maximum_retry_attempts >= 0 && s.maximum_retry_attempts <= 10000])
    error_message = "maximum_retry_attempts must be bounded: 0-10000 (-1, infinite, is not allowed)."
  }

  validation {
    condition     = alltrue([for s in values(var.kinesis_event_sources) : s.maximum_record_age_in_seconds >= 60 && s.maximum_record_age_in_seconds <= 604800])
    error_message = "maximum_record_age_in_seconds must be bounded: 60-604800 (-1, infinite, is not allowed)."
  }
}

variable "role_permissions_boundary" {
  description = "ARN of a permissions boundary for the execution role, or null."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}

variable "create_async_event_config" {
  description = "Configure asynchronous invocation (retries, event age, on-failure destination): true for functions invoked asynchronously (EventBridge, Scheduler). A plain bool so the count is known at plan time."
  type        = bool
  default     = false
}

variable "async_on_failure_destination_arn" {
  description = "SQS queue or SNS topic ARN receiving asynchronous invocations (EventBridge, Scheduler, InvokeAsync) that failed after their retries (used with create_async_event_config). The role gets sqs:SendMessage or sns:Publish on it."
  type        = string
  default     = null

  validation {
    condition     = var.async_on_failure_destination_arn == null || can(regex("^arn:[a-z-]+:(sqs|sns):", coalesce(var.async_on_failure_destination_arn, "x")))
    error_message = "async_on_failure_destination_arn must be an SQS queue or SNS topic ARN."
  }

  validation {
    condition     = !var.create_async_event_config || var.async_on_failure_destination_arn != null
    error_message = "create_async_event_config needs async_on_failure_destination_arn."
  }
}

variable "async_maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation before the on-failure destination (0-2)."
  type        = number
  default     = 2

  validation {
    condition     = var.async_maximum_retry_attempts >= 0 && var.async_maximum_retry_attempts <= 2
    error_message = "async_maximum_retry_attempts must be between 0 and 2."
  }
}

variable "async_maximum_event_age_seconds" {
  description = "Oldest asynchronous event Lambda still tries (60-21600 s); older ones go to the on-failure destination."
  type        = number
  default     = 3600

  validation {
    condition     = var.async_maximum_event_age_seconds >= 60 && var.async_maximum_event_age_seconds <= 21600
    error_message = "async_maximum_event_age_seconds must be between 60 and 21600."
  }
}
