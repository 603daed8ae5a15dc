################################################################################
# Analytics (enable_quicksight): QuickSight over Athena.
#
# - Bar history: a Glue table over s3://<history>/bars/ (gzip NDJSON, JSON SerDe) with partition
#   projection on symbol/year/month, exactly the stocksage.history layout
#   bars/symbol=X/year=YYYY/month=MM/ -- no crawler, no MSCK REPAIR.
# - Results: read live from DynamoDB through the Athena DynamoDB connector (a Lambda from the
#   Serverless Application Repository, registered as the Athena catalog "<connector name>").
#   Its schema comes from a Glue table flagged for the connector (database location holds
#   "dynamo-db-flag", table classification "dynamodb", sourceTable = the results table), so the
#   columns are typed and come from stack.json. Why the connector rather than DynamoDB exports:
#   docs/ANALYTICS.md.
# - Athena workgroup with SSE-KMS results in a dedicated bucket (connector spill under spill/).
# - Alerts archive: the alerts topic delivers every alert (raw payload) to a Firehose stream that
#   writes gzip NDJSON under s3://<history>/alerts/dt=YYYY-MM-DD/; a Glue table reads it with
#   date partition projection (the last analytics_alerts_days days).
# - The Athena SQL lives in services/sql/*.sql, rendered here with templatefile() (table names,
#   the results column list); the rendered text is what the QuickSight custom-SQL data sets send
#   and what the output analytics_sql shows (tests/integration/test_analytics_sql.py runs it on
#   duckdb over data from the local stack).
# - QuickSight data source (Athena, the workgroup), data sets (direct query) and the dashboard
#   (modules/analytics/dashboard.tf; its variables: analytics_dashboard.tf). QuickSight itself must be subscribed once per account (Enterprise
#   edition) and its service role given access to the buckets, the key and the connector Lambda
#   (docs/ANALYTICS.md).
#
# The resources are in modules/analytics (one create flag: enable_quicksight), called once
# below; this file keeps the root's variables, the column lists and the rendered SQL (inputs of
# the module and outputs of the root). Every column list is derived from stocksage/stack.json
# (indicator_columns, features): one source of truth with the processor
# (tests/unit/terraform/test_terraform_contracts.py checks it).
################################################################################

variable "enable_quicksight" {
  description = "Create the analytics layer: Glue catalog, Athena workgroup, DynamoDB connector, QuickSight data source and data sets. Needs a QuickSight subscription in the account."
  type        = bool
  default     = false
}

variable "quicksight_principal_arn" {
  description = "QuickSight user or group ARN given owner permissions on the data source and data sets (e.g. arn:aws:quicksight:us-east-1:111122223333:group/default/analysts)."
  type        = string
  default     = null

  validation {
    condition     = var.quicksight_principal_arn == null || can(regex("^arn:aws[a-zA-Z-]*:quicksight:", coalesce(var.quicksight_principal_arn, "x")))
    error_message = "quicksight_principal_arn must be a QuickSight user or group ARN."
  }

  validation {
    condition     = !var.enable_quicksight || var.quicksight_principal_arn != null
    error_message = "enable_quicksight needs quicksight_principal_arn."
  }
}

variable "athena_dynamodb_connector_version" {
  description = "Semantic version of the AthenaDynamoDBConnector application in the Serverless Application Repository (pinned; check the SAR page for newer ones)."
  type        = string
  default     = "2023.46.2"
}

variable "analytics_alerts_days" {
  description = "Days of archived alerts the Athena alerts table projects (its partition range ends today)."
  type        = number
  default     = 90

  validation {
    condition     = var.analytics_alerts_days >= 1 && var.analytics_alerts_days <= 3650 && floor(var.analytics_alerts_days) == var.analytics_alerts_days
    error_message = "analytics_alerts_days must be a whole number of days between 1 and 3650."
  }
}

variable "analytics_history_symbols" {
  description = "Symbols the history table's partition projection enumerates (null: collector_symbols)."
  type        = list(string)
  default     = null
}

locals {
  analytics_name  = replace("${local.project}_${var.environment}", "-", "_")
  connector_name  = lower("${local.project}-${var.environment}-ddb-connector")
  history_symbols = coalesce(var.analytics_history_symbols, var.collector_symbols)
  history_db_name = "${local.analytics_name}_history"
  results_db_name = "${local.analytics_name}_results"
  alerts_prefix   = "alerts/"
  alerts_archive  = "${local.project}-${var.environment}-alerts-archive"

  # Bar fields (stocksage.bars.Bar.to_dict) except symbol, which is the partition column.
  bar_columns = [
    { name = "bar_time", type = "string" },
    { name = "interval", type = "string" },
    { name = "open", type = "double" },
    { name = "high", type = "double" },
    { name = "low", type = "double" },
    { name = "close", type = "double" },
    { name = "volume", type = "double" },
    { name = "source", type = "string" },
  ]

  # Results item (stocksage.processing.result_item): keys, OHLCV, indicators, features, prediction.
  # range_forecast = forecast ln(high/low) of the next bar (log-price units); range_low/high =
  # close * exp(-+range_forecast / 2), the band as prices (absent while no range model serves).
  result_numeric_columns = distinct(concat(
    ["open", "high", "low", "close", "volume"],
    local.stack.indicator_columns,
    local.stack.features,
    ["prob_up", "range_forecast", "range_low", "range_high"],
  ))
  result_columns = concat(
    [
      { name = local.keys.results.partition, type = "string" },
      { name = local.keys.results.sort, type = "string" },
      { name = "interval", type = "string" },
    ],
    [for c in local.result_numeric_columns : { name = c, type = "double" }],
    [
      { name = "model_version", type = "string" },
      { name = "prediction_status", type = "string" },
      { name = "processed_at", type = "string" },
      { name = "expires_at", type = "bigint" },
    ],
  )

  # Alert payload fields (stocksage.alerts.Alert.payload) the archive table reads; bar is the
  # bar dict (stocksage.bars.Bar.to_dict). rule_params and details vary per rule: not typed.
  alert_columns = [
    { name = "alert_id", type = "string" },
    { name = "symbol", type = "string" },
    { name = "rule_id", type = "string" },
    { name = "rule_type", type = "string" },
    { name = "severity", type = "string" },
    { name = "cooldown_bars", type = "int" },
    { name = "subject", type = "string" },
    { name = "text", type = "string" },
    { name = "bar", type = format("struct<%s>", join(",", [for c in local.alert_bar_fields : format("%s:%s", c.name, c.type)])) },
  ]
  alert_bar_fields = concat([{ name = "symbol", type = "string" }], local.bar_columns)

  # Athena SQL (services/sql/NAME.sql): the only free text is the template; names and the
  # results column list come from here. Comment lines are dropped from what is sent.
  analytics_sql_vars = {
    result_columns   = join(",\n  ", [for c in local.result_columns : format("\"%s\"", c.name)])
    results_catalog  = local.connector_name
    results_database = local.results_db_name
    history_database = local.history_db_name
  }
  analytics_sql = {
    for file in fileset("${path.module}/sql", "*.sql") : trimsuffix(file, ".sql") => join("\n", [
      for line in split("\n", templatefile("${path.module}/sql/${file}", local.analytics_sql_vars)) :
      line if trimspace(line) != "" && !startswith(trimspace(line), "--")
    ])
  }

  # The queries that back a QuickSight data set (custom SQL, direct query) each.
  quicksight_data_sets = ["results", "latest", "alerts", "history_monthly"]

  # Output columns of each query that backs a QuickSight data set (SQL type names, mapped to
  # QuickSight types in the module). The SQL test checks them against what the query returns.
  analytics_query_columns = {
    results = concat(local.result_columns, [{ name = "bar_ts", type = "timestamp" }])
    latest = [
      { name = "symbol", type = "string" },
      { name = "bars", type = "bigint" },
      { name = "last_bar_ts", type = "timestamp" },
      { name = "last_close", type = "double" },
      { name = "last_prob_up", type = "double" },
      { name = "model_version", type = "string" },
    ]
    alerts = [
      { name = "alert_id", type = "string" },
      { name = "symbol", type = "string" },
      { name = "rule_id", type = "string" },
      { name = "rule_type", type = "string" },
      { name = "severity", type = "string" },
      { name = "subject", type = "string" },
      { name = "bar_ts", type = "timestamp" },
      { name = "close", type = "double" },
    ]
    history_monthly = [
      { name = "symbol", type = "string" },
      { name = "year", type = "int" },
      { name = "month", type = "int" },
      { name = "bars_stored", type = "bigint" },
      { name = "bars", type = "bigint" },
      { name = "first_bar_ts", type = "timestamp" },
      { name = "last_bar_ts", type = "timestamp" },
      { name = "low", type = "double" },
      { name = "high", type = "double" },
      { name = "last_close", type = "double" },
    ]
  }
}

################################################################################
# The analytics layer: modules/analytics, created only with enable_quicksight
################################################################################

module "analytics" {
  source = "../modules/analytics"
  create = var.enable_quicksight

  name                       = local.analytics_name
  display_name               = "${local.project} ${var.environment}"
  history_database_name      = local.history_db_name
  results_database_name      = local.results_db_name
  connector_name             = local.connector_name
  connector_version          = var.athena_dynamodb_connector_version
  athena_bucket_name         = "${local.names.history_bucket}-athena${local.bucket_suffix}"
  deny_insecure_transport    = local.deny_insecure_transport
  kms_key_arn                = module.kms.key_arn
  kms_key_id                 = module.kms.key_id
  history_bucket_name        = module.history_bucket.bucket
  history_bucket_arn         = module.history_bucket.arn
  history_symbols            = local.history_symbols
  results_table_name         = module.tables["results_table"].name
  results_table_arn          = module.tables["results_table"].arn
  results_partition_key      = local.keys.results.partition
  alerts_topic_arn           = aws_sns_topic.alerts.arn
  alerts_prefix              = local.alerts_prefix
  alerts_archive_name        = local.alerts_archive
  alerts_days                = var.analytics_alerts_days
  log_retention_days         = var.log_retention_days
  bar_columns                = local.bar_columns
  result_columns             = local.result_columns
  alert_columns              = local.alert_columns
  sql                        = local.analytics_sql
  data_sets                  = local.quicksight_data_sets
  query_columns              = local.analytics_query_columns
  quicksight_principal_arn   = var.quicksight_principal_arn
  dashboard_time_granularity = var.dashboard_time_granularity
  dashboard_alerts_rows      = var.dashboard_alerts_rows
  indicators = {
    for k in ["sma_window", "ema_fast", "ema_slow", "macd_signal", "rsi_window", "bb_window", "bb_dev"] : k => local.stack.indicators[k]
  }
}

################################################################################
# Outputs
################################################################################

output "analytics_sql" {
  description = "The Athena SQL of services/sql rendered for this environment (what the QuickSight data sets send), by file name."
  value       = local.analytics_sql
}

output "analytics_schema" {
  description = "Columns of the Glue tables and of the queries behind the data sets (SQL types), and where the S3 tables live; for tests and ad-hoc tools."
  value = {
    results_columns = local.result_columns
    bars = {
      prefix     = "${trimsuffix(local.stack.lifecycle.history_prefix, "/")}/"
      columns    = local.bar_columns
      partitions = [{ name = "symbol", type = "string" }, { name = "year", type = "int" }, { name = "month", type = "int" }]
    }
    alerts = {
      prefix     = local.alerts_prefix
      columns    = local.alert_columns
      partitions = [{ name = "dt", type = "string" }]
    }
    queries = local.analytics_query_columns
  }
}
