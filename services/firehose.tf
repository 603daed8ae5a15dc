################################################################################
# History: every record that enters Kinesis lands in S3 (Firehose, Kinesis source).
#
# Layout = stocksage.history.history_key:
#   bars/symbol={SYMBOL}/year={YYYY}/month={MM}/<object>.json.gz     bars   (gzip NDJSON)
#   trades/symbol={SYMBOL}/year={YYYY}/month={MM}/<object>.json.gz   trades and watermarks
# Dynamic partitioning with JQ metadata extraction on the record's own fields (the query is
# stack.json lifecycle.history_partition_query: record kind, symbol, and the year and month of
# the bar_time, or of a trades record's first trade), a newline after every record
# (AppendDelimiterToRecord), GZIP, the data key. Records JQ cannot partition go to the error
# prefix. Locally the runtime's Firehose worker (stocksage.local.firehose) reads this
# configuration back and delivers in the same layout.
################################################################################

variable "history_buffer_mb" {
  description = "Firehose buffering size in MiB (64-128: dynamic partitioning needs at least 64)."
  type        = number
  default     = 64

  validation {
    condition     = var.history_buffer_mb >= 64 && var.history_buffer_mb <= 128
    error_message = "history_buffer_mb must be between 64 and 128 with dynamic partitioning."
  }
}

variable "history_buffer_seconds" {
  description = "Firehose buffering interval in seconds (0-900)."
  type        = number
  default     = 300

  validation {
    condition     = var.history_buffer_seconds >= 0 && var.history_buffer_seconds <= 900
    error_message = "history_buffer_seconds must be between 0 and 900."
  }
}

locals {
  # The query's "record" key is the top folder: "bars" (= lifecycle.history_prefix) or "trades".
  history_prefix_template = "!{partitionKeyFromQuery:record}/symbol=!{partitionKeyFromQuery:symbol}/year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/"
  history_error_prefix    = "errors/history/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
}

module "history_delivery" {
  source = "../modules/firehose_s3"

  name                       = local.names.history_delivery
  role_description           = "Firehose delivery of the bar stream into the S3 history."
  kinesis_source_stream_arn  = aws_kinesis_stream.bars.arn
  bucket_arn                 = module.history_bucket.arn
  kms_key_arn                = module.kms.key_arn
  prefix                     = local.history_prefix_template
  error_output_prefix        = local.history_error_prefix
  write_prefixes             = [local.stack.lifecycle.history_prefix, local.stack.lifecycle.trades_prefix, "errors/history/"]
  write_statement_sid        = "WriteHistory"
  buffering_size_mb          = var.history_buffer_mb
  buffering_interval_seconds = var.history_buffer_seconds
  compression_format         = "GZIP"
  file_extension             = ".json.gz"
  dynamic_partitioning       = true
  log_retention_days         = var.log_retention_days

  processors = [
    {
      type = "MetadataExtraction"
      parameters = [
        { name = "MetadataExtractionQuery", value = local.stack.lifecycle.history_partition_query },
        { name = "JsonParsingEngine", value = "JQ-1.6" },
      ]
    },
    { type = "AppendDelimiterToRecord" },
  ]
}

output "history_delivery_stream_name" {
  description = "Firehose delivery stream of the bar history (Kinesis -> S3 bars/)."
  value       = module.history_delivery.name
}
