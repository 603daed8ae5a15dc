provider "aws" {
  region = var.aws_region
}

variable "aws_region" {
  description = "Region of the example."
  type        = string
  default     = "us-east-1"
}

data "aws_caller_identity" "current" {}

module "kms" {
  source = "../../../kms_key"

  alias_name  = "example-firehose"
  description = "Example key for modules/firehose_s3."
}

module "bucket" {
  source = "../../../s3_bucket"

  bucket        = "example-history-${data.aws_caller_identity.current.account_id}-${var.aws_region}"
  kms_key_arn   = module.kms.key_arn
  force_destroy = true
}

resource "aws_kinesis_stream" "events" {
  name             = "example-events"
  retention_period = 24
  encryption_type  = "KMS"
  kms_key_id       = module.kms.key_arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

# Kinesis source, partitioned by a field of each JSON record, newline-delimited, gzip.
module "history" {
  source = "../.."

  name                      = "example-history"
  role_description          = "Firehose delivery of the example stream into S3."
  kinesis_source_stream_arn = aws_kinesis_stream.events.arn
  bucket_arn                = module.bucket.arn
  kms_key_arn               = module.kms.key_arn
  prefix                    = "events/source=!{partitionKeyFromQuery:source}/"
  error_output_prefix       = "errors/events/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
  write_prefixes            = ["events/", "errors/events/"]
  write_statement_sid       = "WriteEvents"
  buffering_size_mb         = 64
  dynamic_partitioning      = true
  file_extension            = ".json.gz"
  log_retention_days        = 14
  processors = [
    {
      type = "MetadataExtraction"
      parameters = [
        { name = "MetadataExtractionQuery", value = "{source: .source}" },
        { name = "JsonParsingEngine", value = "JQ-1.6" },
      ]
    },
    { type = "AppendDelimiterToRecord" },
  ]
}

# DirectPut (e.g. an SNS subscription): the stream itself is encrypted with the key.
module "archive" {
  source = "../.."

  name                = "example-archive"
  bucket_arn          = module.bucket.arn
  kms_key_arn         = module.kms.key_arn
  prefix              = "archive/dt=!{timestamp:yyyy-MM-dd}/"
  error_output_prefix = "errors/archive/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
  write_prefixes      = ["archive/", "errors/archive/"]
  file_extension      = ".json.gz"
  processors          = [{ type = "AppendDelimiterToRecord" }]
}

output "history_stream_name" {
  description = "Name of the Kinesis-source delivery stream."
  value       = module.history.name
}

output "archive_stream_arn" {
  description = "ARN of the DirectPut delivery stream."
  value       = module.archive.arn
}
