variable "name" {
  description = "Name of the delivery stream, of its role and (under /aws/kinesisfirehose/) of its log group."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,64}$", var.name))
    error_message = "name must be 1-64 letters, digits, '_', '.' or '-'."
  }
}

variable "role_description" {
  description = "Description of the delivery role (what it delivers where)."
  type        = string
  default     = "Firehose delivery into S3."
}

variable "bucket_arn" {
  description = "ARN of the destination bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:s3:::", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key: SSE-KMS of the objects and the log group, and of the stream itself for DirectPut."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "kinesis_source_stream_arn" {
  description = "Kinesis data stream to read from; null for a DirectPut stream (e.g. an SNS subscription)."
  type        = string
  default     = null

  validation {
    condition     = var.kinesis_source_stream_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kinesis:", coalesce(var.kinesis_source_stream_arn, "x")))
    error_message = "kinesis_source_stream_arn must be null or a Kinesis stream ARN."
  }
}

variable "prefix" {
  description = "S3 key prefix of delivered objects (Firehose expressions such as !{timestamp:yyyy-MM-dd} or !{partitionKeyFromQuery:x} allowed)."
  type        = string
}

variable "error_output_prefix" {
  description = "S3 key prefix of records that could not be delivered (must contain !{firehose:error-output-type})."
  type        = string

  validation {
    condition     = strcontains(var.error_output_prefix, "!{firehose:error-output-type}")
    error_message = "error_output_prefix must contain !{firehose:error-output-type}."
  }
}

variable "write_prefixes" {
  description = "Key prefixes the role may write under (s3:PutObject on <bucket>/<prefix>*): the static part of prefix and of error_output_prefix."
  type        = list(string)

  validation {
    condition     = length(var.write_prefixes) > 0 && alltrue([for p in var.write_prefixes : p != "" && !strcontains(p, "*")])
    error_message = "write_prefixes must name at least one non-empty prefix without '*'."
  }
}

variable "write_statement_sid" {
  description = "Sid of the role's S3 write statement."
  type        = string
  default     = "WriteObjects"

  validation {
    condition     = can(regex("^[A-Za-z0-9]+$", var.write_statement_sid))
    error_message = "write_statement_sid must be alphanumeric."
  }
}

variable "buffering_size_mb" {
  description = "Buffer size in MiB before delivery (1-128; dynamic partitioning needs at least 64)."
  type        = number
  default     = 5

  validation {
    condition     = var.buffering_size_mb >= 1 && var.buffering_size_mb <= 128
    error_message = "buffering_size_mb must be between 1 and 128."
  }
}

variable "buffering_interval_seconds" {
  description = "Buffer interval in seconds before delivery (0-900)."
  type        = number
  default     = 300

  validation {
    condition     = var.buffering_interval_seconds >= 0 && var.buffering_interval_seconds <= 900
    error_message = "buffering_interval_seconds must be between 0 and 900."
  }
}

variable "compression_format" {
  description = "Compression of the delivered objects."
  type        = string
  default     = "GZIP"

  validation {
    condition     = contains(["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"], var.compression_format)
    error_message = "compression_format must be UNCOMPRESSED, GZIP, ZIP, Snappy or HADOOP_SNAPPY."
  }
}

variable "file_extension" {
  description = "Extension of the delivered objects (e.g. .json.gz); null for Firehose's default."
  type        = string
  default     = null
}

variable "dynamic_partitioning" {
  description = "Enable dynamic partitioning (prefix uses partitionKeyFromQuery; needs buffering_size_mb >= 64)."
  type        = bool
  default     = false

  validation {
    condition     = !var.dynamic_partitioning || var.buffering_size_mb >= 64
    error_message = "dynamic_partitioning needs buffering_size_mb >= 64."
  }
}

variable "processors" {
  description = "Record processors in order (e.g. MetadataExtraction with its query, AppendDelimiterToRecord); empty: no processing."
  type = list(object({
    type       = string
    parameters = optional(list(object({ name = string, value = string })), [])
  }))
  default = []
}

variable "log_retention_days" {
  description = "Retention of the delivery error log group, in days."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}
