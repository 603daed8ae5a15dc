# environment, aws_region, aws_endpoint_url, tags: root_common.tf (shared with network/).

################################################################################
# Network: read from the network root's state (terraform_remote_state, collector.tf)
################################################################################

variable "network_state" {
  description = "S3 location of the network root's state (bucket, key, region); scripts/tf.sh passes it for dev and prod. The collector's subnets, public-IP setting and security group are read from its outputs, and the plan stops if they are missing. Null only in local (no collector service)."
  type = object({
    bucket = string
    key    = string
    region = string
  })
  default = null

  validation {
    condition     = (var.environment == "local") == (var.network_state == null)
    error_message = "dev and prod need network_state (scripts/tf.sh passes it: apply the network root first); local takes none."
  }
}

################################################################################
# Key, stream, tables, bucket
################################################################################

variable "kms_deletion_window_days" {
  description = "Waiting period before the data key is deleted (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "stream_mode" {
  description = "Kinesis capacity mode: PROVISIONED (stream_shard_count shards) or ON_DEMAND."
  type        = string
  default     = "PROVISIONED"

  validation {
    condition     = contains(["PROVISIONED", "ON_DEMAND"], var.stream_mode)
    error_message = "stream_mode must be PROVISIONED or ON_DEMAND."
  }
}

variable "stream_shard_count" {
  description = "Shards of a PROVISIONED stream (each takes 1,000 records/s or 1 MB/s of writes)."
  type        = number
  default     = 1

  validation {
    condition     = var.stream_shard_count >= 1 && var.stream_shard_count <= 500
    error_message = "stream_shard_count must be between 1 and 500."
  }
}

variable "stream_retention_hours" {
  description = "Kinesis retention in hours (24-8760)."
  type        = number
  default     = 24

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "stream_retention_hours must be between 24 and 8760."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection (true in prod)."
  type        = bool
  default     = false
}

variable "bucket_name_suffix" {
  description = "Suffix of the data bucket names (S3 names are global). null: \"<account id>-<region>\", unique for whoever deploys. \"\" keeps the names of stacks deployed before the suffix existed (renaming a bucket replaces it)."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name_suffix == null || can(regex("^([a-z0-9][a-z0-9-]{0,20}[a-z0-9])?$", coalesce(var.bucket_name_suffix, "x")))
    error_message = "bucket_name_suffix must be null, empty, or 2-22 lower-case letters, digits and hyphens."
  }
}

variable "history_force_destroy" {
  description = "Let destroy empty the history bucket (throw-away environments only)."
  type        = bool
  default     = false
}

variable "history_noncurrent_days" {
  description = "Days non-current versions of history objects are kept."
  type        = number
  default     = 30

  validation {
    condition     = var.history_noncurrent_days >= 1
    error_message = "history_noncurrent_days must be at least 1."
  }
}

variable "history_ia_transition_days" {
  description = "Days after which bars/ objects move to STANDARD_IA (30 or more)."
  type        = number
  default     = 30

  validation {
    condition     = var.history_ia_transition_days >= 30
    error_message = "S3 allows STANDARD_IA transitions after 30 days at the earliest."
  }
}

variable "create_local_alerts_queue" {
  description = "Create the alerts-inbox SQS queue subscribed to the alerts topic (SNS envelope kept). Local environment only."
  type        = bool
  default     = false

  validation {
    condition     = !var.create_local_alerts_queue || var.environment == "local"
    error_message = "create_local_alerts_queue is for the local environment only."
  }
}

################################################################################
# Processor Lambda
################################################################################

variable "processor_zip" {
  description = "Path of the processor deployment package built by scripts/package_lambda.py (scripts/tf.sh passes it)."
  type        = string

  validation {
    condition     = endswith(var.processor_zip, ".zip")
    error_message = "processor_zip must be a .zip path."
  }
}

variable "processor_layers" {
  description = "Layer ARNs of the processor (dependency layer: numpy, pandas, ta, Powertools). Empty in local, where the runtime runs the handler in-process."
  type        = list(string)
  default     = []
}

variable "processor_memory_mb" {
  description = "Processor memory in MB."
  type        = number
  default     = 1024

  validation {
    condition     = var.processor_memory_mb >= 512 && var.processor_memory_mb <= 10240
    error_message = "processor_memory_mb must be between 512 and 10240 (pandas needs room)."
  }
}

variable "processor_timeout_seconds" {
  description = "Processor timeout in seconds."
  type        = number
  default     = 120

  validation {
    condition     = var.processor_timeout_seconds >= 10 && var.processor_timeout_seconds <= 900
    error_message = "processor_timeout_seconds must be between 10 and 900."
  }
}

variable "processor_tracing_mode" {
  description = "X-Ray tracing of the processor: PassThrough or Active."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.processor_tracing_mode)
    error_message = "processor_tracing_mode must be PassThrough or Active."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the processor and the collector."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of the log groups in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "result_ttl_days" {
  description = "Days a results item lives (RESULT_TTL_DAYS -> expires_at)."
  type        = number
  default     = 30

  validation {
    condition     = var.result_ttl_days >= 1 && floor(var.result_ttl_days) == var.result_ttl_days
    error_message = "result_ttl_days must be a whole number of days, at least 1."
  }
}

################################################################################
# Kinesis event source mapping
################################################################################

variable "esm_batch_size" {
  description = "Records per processor invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.esm_batch_size >= 1 && var.esm_batch_size <= 10000
    error_message = "esm_batch_size must be between 1 and 10000."
  }
}

variable "esm_maximum_batching_window_seconds" {
  description = "Longest wait to fill a batch (0-300 s)."
  type        = number
  default     = 1

  validation {
    condition     = var.esm_maximum_batching_window_seconds >= 0 && var.esm_maximum_batching_window_seconds <= 300
    error_message = "esm_maximum_batching_window_seconds must be between 0 and 300."
  }
}

variable "esm_parallelization_factor" {
  description = "Concurrent batches per shard (1-10); order is kept per partition key (symbol)."
  type        = number
  default     = 1

  validation {
    condition     = var.esm_parallelization_factor >= 1 && var.esm_parallelization_factor <= 10
    error_message = "esm_parallelization_factor must be between 1 and 10."
  }
}

variable "esm_maximum_retry_attempts" {
  description = "Retries of a failing batch before it goes to the failure queue (bounded: 0-10)."
  type        = number
  default     = 3

  validation {
    condition     = var.esm_maximum_retry_attempts >= 0 && var.esm_maximum_retry_attempts <= 10
    error_message = "esm_maximum_retry_attempts must be between 0 and 10."
  }
}

variable "esm_maximum_record_age_seconds" {
  description = "Records older than this go to the failure queue instead of being processed (bounded: 60-604800 s)."
  type        = number
  default     = 3600

  validation {
    condition     = var.esm_maximum_record_age_seconds >= 60 && var.esm_maximum_record_age_seconds <= 604800
    error_message = "esm_maximum_record_age_seconds must be between 60 and 604800."
  }
}

################################################################################
# SageMaker endpoint
################################################################################

variable "create_endpoint" {
  description = "Create the SageMaker model and endpoint. On real AWS the model artifact and code bundle must be in the bucket first: bootstrap with false, upload, then true."
  type        = bool
  default     = true
}

variable "check_model_artifact" {
  description = "With create_endpoint, stop the apply before CreateEndpoint while the bootstrap model artifact (stack.json model.artifact_key) is missing, naming the next step (a fresh account). Set false only when an endpoint already serves a promoted model and the bootstrap artifact was removed on purpose."
  type        = bool
  default     = true
}

variable "sklearn_image_tag" {
  description = "Pinned tag of the SageMaker scikit-learn framework image."
  type        = string
  default     = "1.9-0-cpu-py3"
}

variable "endpoint_instance_type" {
  description = "Instance type of the endpoint (e.g. ml.m5.large, prod); null for Serverless Inference (local, dev)."
  type        = string
  default     = null

  validation {
    condition     = var.endpoint_instance_type == null || can(regex("^ml\\.", var.endpoint_instance_type))
    error_message = "endpoint_instance_type must be null or an ml.* instance type."
  }
}

variable "endpoint_initial_instance_count" {
  description = "Instances of an instance-backed endpoint."
  type        = number
  default     = 1

  validation {
    condition     = var.endpoint_initial_instance_count >= 1
    error_message = "endpoint_initial_instance_count must be at least 1."
  }
}

variable "endpoint_serverless_memory_mb" {
  description = "Serverless endpoint memory (1024-6144 in 1024 steps)."
  type        = number
  default     = 2048

  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.endpoint_serverless_memory_mb)
    error_message = "endpoint_serverless_memory_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144."
  }
}

variable "endpoint_serverless_max_concurrency" {
  description = "Serverless endpoint maximum concurrency (1-200)."
  type        = number
  default     = 5

  validation {
    condition     = var.endpoint_serverless_max_concurrency >= 1 && var.endpoint_serverless_max_concurrency <= 200
    error_message = "endpoint_serverless_max_concurrency must be between 1 and 200."
  }
}

################################################################################
# Collector (ECS Fargate)
################################################################################

variable "collector_image" {
  description = "Container image of the collector (pinned tag or digest)."
  type        = string

  validation {
    condition     = length(var.collector_image) > 0 && !endswith(var.collector_image, ":latest")
    error_message = "collector_image must be set and pinned (no :latest)."
  }
}

variable "collector_cpu" {
  description = "Collector task CPU units."
  type        = number
  default     = 256
}

variable "collector_memory" {
  description = "Collector task memory (MiB)."
  type        = number
  default     = 512
}

variable "collector_desired_count" {
  description = "Collector tasks to run when the service exists."
  type        = number
  default     = 1
}

variable "max_future_skew_seconds" {
  description = "Seconds a bar's bar_time may lie after the record's arrival in Kinesis (MAX_FUTURE_SKEW_SECONDS); later bars are quarantined (clock skew of producers)."
  type        = number
  default     = 300

  validation {
    condition     = var.max_future_skew_seconds >= 0 && var.max_future_skew_seconds <= 86400
    error_message = "max_future_skew_seconds must be between 0 and 86400."
  }
}

variable "rules_cache_seconds" {
  description = "Seconds the processor caches the alert rules table (RULES_MAX_AGE): a rule added with the CLI takes effect within this time."
  type        = number
  default     = 60

  validation {
    condition     = var.rules_cache_seconds >= 0 && var.rules_cache_seconds <= 3600
    error_message = "rules_cache_seconds must be between 0 and 3600."
  }
}
