provider "aws" {
  region = var.aws_region
}

variable "aws_region" {
  description = "Region of the example."
  type        = string
  default     = "us-east-1"
}

variable "enable_analytics" {
  description = "Create the analytics layer (needs a QuickSight subscription in the account)."
  type        = bool
  default     = true
}

variable "quicksight_principal_arn" {
  description = "QuickSight group that owns the data source, data sets and dashboard."
  type        = string
  default     = "arn:aws:quicksight:us-east-1:111122223333:group/default/analysts"
}

data "aws_caller_identity" "current" {}

module "kms" {
  source = "../../../kms_key"

  alias_name  = "example-analytics"
  description = "Example key for modules/analytics."
}

module "history_bucket" {
  source = "../../../s3_bucket"

  bucket        = "example-lake-${data.aws_caller_identity.current.account_id}-${var.aws_region}"
  kms_key_arn   = module.kms.key_arn
  force_destroy = true
}

module "results" {
  source = "../../../dynamodb_table"

  name        = "example-results"
  hash_key    = "symbol"
  range_key   = "bar_time"
  kms_key_arn = module.kms.key_arn
}

resource "aws_sns_topic" "alerts" {
  name              = "example-alerts"
  kms_master_key_id = module.kms.key_arn
}

locals {
  bar_columns = [
    { name = "bar_time", type = "string" },
    { name = "close", type = "double" },
    { name = "volume", type = "double" },
  ]
  indicator_columns = ["sma_20", "ema_12", "ema_26", "bb_high", "bb_mavg", "bb_low", "rsi_14", "macd", "macd_signal", "macd_diff"]
  result_columns = concat(
    [{ name = "symbol", type = "string" }, { name = "bar_time", type = "string" }],
    [for c in concat(["close"], local.indicator_columns, ["prob_up", "range_low", "range_high"]) : { name = c, type = "double" }],
    [{ name = "model_version", type = "string" }],
  )
  alert_columns = [
    { name = "alert_id", type = "string" },
    { name = "symbol", type = "string" },
    { name = "severity", type = "string" },
    { name = "subject", type = "string" },
  ]
  results_from = "\"example-ddb-connector\".\"example_results\".\"results\""
  sql = {
    results         = "SELECT *, from_iso8601_timestamp(bar_time) AS bar_ts FROM ${local.results_from}"
    latest          = "SELECT symbol, count(*) AS bars, max(from_iso8601_timestamp(bar_time)) AS last_bar_ts FROM ${local.results_from} GROUP BY symbol"
    alerts          = "SELECT alert_id, symbol, severity, subject FROM \"awsdatacatalog\".\"example_history\".\"alerts\""
    history_monthly = "SELECT symbol, year, month, count(*) AS bars FROM \"awsdatacatalog\".\"example_history\".\"bars\" GROUP BY 1, 2, 3"
  }
  query_columns = {
    results = concat(local.result_columns, [{ name = "bar_ts", type = "timestamp" }])
    latest  = [{ name = "symbol", type = "string" }, { name = "bars", type = "bigint" }, { name = "last_bar_ts", type = "timestamp" }]
    alerts  = local.alert_columns
    history_monthly = [
      { name = "symbol", type = "string" }, { name = "year", type = "int" }, { name = "month", type = "int" },
      { name = "bars", type = "bigint" },
    ]
  }
}

module "analytics" {
  source = "../.."
  create = var.enable_analytics

  name                     = "example"
  display_name             = "example"
  history_database_name    = "example_history"
  results_database_name    = "example_results"
  connector_name           = "example-ddb-connector"
  connector_version        = "2023.46.2"
  athena_bucket_name       = "example-athena-${data.aws_caller_identity.current.account_id}-${var.aws_region}"
  kms_key_arn              = module.kms.key_arn
  kms_key_id               = module.kms.key_id
  history_bucket_name      = module.history_bucket.bucket
  history_bucket_arn       = module.history_bucket.arn
  history_symbols          = ["AAPL", "MSFT", "NVDA"]
  results_table_name       = module.results.name
  results_table_arn        = module.results.arn
  results_partition_key    = "symbol"
  alerts_topic_arn         = aws_sns_topic.alerts.arn
  alerts_archive_name      = "example-alerts-archive"
  alerts_days              = 30
  log_retention_days       = 14
  bar_columns              = local.bar_columns
  result_columns           = local.result_columns
  alert_columns            = local.alert_columns
  sql                      = local.sql
  data_sets                = keys(local.sql)
  query_columns            = local.query_columns
  quicksight_principal_arn = var.quicksight_principal_arn
  indicators               = { sma_window = 20, ema_fast = 12, ema_slow = 26, macd_signal = 9, rsi_window = 14, bb_window = 20, bb_dev = 2 }
}

output "athena_workgroup" {
  description = "Athena workgroup of the example, or null."
  value       = module.analytics.athena_workgroup_name
}

output "dashboard_url" {
  description = "QuickSight dashboard of the example, or null."
  value       = module.analytics.dashboard_url
}
