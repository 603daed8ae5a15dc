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
#   (analytics_dashboard.tf). QuickSight itself must be subscribed once per account (Enterprise
#   edition) and its service role given access to the buckets, the key and the connector Lambda
#   (docs/ANALYTICS.md).
#
# Every column list is derived from stocksage/stack.json (indicator_columns, features): one
# source of truth with the processor (tests/unit/test_terraform_contracts.py checks it).
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
  analytics       = var.enable_quicksight ? 1 : 0
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

  quicksight_types = { string = "STRING", double = "DECIMAL", bigint = "INTEGER", int = "INTEGER", timestamp = "DATETIME" }

  # The queries that back a QuickSight data set (custom SQL, direct query) each.
  quicksight_data_sets = ["results", "latest", "alerts", "history_monthly"]

  # Output columns of each query that backs a QuickSight data set (SQL type names, mapped with
  # quicksight_types). The SQL test checks them against what the query returns.
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
  quicksight_actions = [
    "quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions", "quicksight:PassDataSet",
    "quicksight:DescribeIngestion", "quicksight:ListIngestions", "quicksight:UpdateDataSet",
    "quicksight:DeleteDataSet", "quicksight:CreateIngestion", "quicksight:CancelIngestion",
    "quicksight:UpdateDataSetPermissions",
  ]
}

################################################################################
# Athena results (+ connector spill) bucket and workgroup
################################################################################

module "athena_bucket" {
  source = "../modules/s3_bucket"
  count  = local.analytics

  bucket                             = "${local.names.history_bucket}-athena${local.bucket_suffix}"
  kms_key_arn                        = module.kms.key_arn
  force_destroy                      = true # query results and spill only: always disposable
  deny_insecure_transport            = local.deny_insecure_transport
  noncurrent_version_expiration_days = 1
  lifecycle_rules = [
    { id = "expire-results", prefix = "results/", expiration_days = 30 },
    { id = "expire-spill", prefix = "spill/", expiration_days = 1 },
  ]
}

resource "aws_athena_workgroup" "analytics" {
  count = local.analytics

  name          = local.analytics_name
  description   = "${local.project} ${var.environment}: QuickSight and ad-hoc queries."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = 10 * 1024 * 1024 * 1024

    result_configuration {
      output_location = "s3://${module.athena_bucket[0].bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = module.kms.key_arn
      }
    }
  }
}

################################################################################
# Glue catalog: bar history on S3 (partition projection)
################################################################################

resource "aws_glue_catalog_database" "history" {
  count = local.analytics

  name        = local.history_db_name
  description = "Bar history of ${local.project} ${var.environment} (s3://${module.history_bucket.bucket}/bars/)."
}

resource "aws_glue_catalog_table" "bars" {
  count = local.analytics

  name          = "bars"
  database_name = aws_glue_catalog_database.history[0].name
  description   = "OHLCV bars, gzip NDJSON written by Firehose/backfill (the history module layout)."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "json"
    compressionType             = "gzip"
    "projection.enabled"        = "true"
    "projection.symbol.type"    = "enum"
    "projection.symbol.values"  = join(",", local.history_symbols)
    "projection.year.type"      = "integer"
    "projection.year.range"     = "1990,2100"
    "projection.month.type"     = "integer"
    "projection.month.range"    = "1,12"
    "projection.month.digits"   = "2"
    "storage.location.template" = "s3://${module.history_bucket.bucket}/bars/symbol=$${symbol}/year=$${year}/month=$${month}/"
    "has_encrypted_data"        = "true"
  }

  partition_keys {
    name = "symbol"
    type = "string"
  }
  partition_keys {
    name = "year"
    type = "int"
  }
  partition_keys {
    name = "month"
    type = "int"
  }

  storage_descriptor {
    location      = "s3://${module.history_bucket.bucket}/bars/"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters = {
        "ignore.malformed.json" = "true"
        "case.insensitive"      = "true"
      }
    }

    dynamic "columns" {
      for_each = local.bar_columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

################################################################################
# Results in DynamoDB: Athena DynamoDB connector + Glue schema for it
################################################################################

resource "aws_glue_catalog_database" "results" {
  count = local.analytics

  name = local.results_db_name
  # The connector only reads schemas from Glue databases whose location holds this flag.
  location_uri = "dynamo-db-flag"
  description  = "Schema of the DynamoDB results table for the Athena DynamoDB connector."
}

resource "aws_glue_catalog_table" "results" {
  count = local.analytics

  name          = "results"
  database_name = aws_glue_catalog_database.results[0].name
  description   = "Processor results (DynamoDB ${module.tables["results_table"].name}), typed from stack.json."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    classification = "dynamodb"
    sourceTable    = module.tables["results_table"].name
  }

  storage_descriptor {
    dynamic "columns" {
      for_each = local.result_columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

# The connector's own role (the SAR template's default role reads every DynamoDB table and Glue
# database of the account; this one reads the results table and the two databases only).
data "aws_iam_policy_document" "connector_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "connector" {
  count = local.analytics

  name               = local.connector_name
  description        = "Athena DynamoDB connector of ${local.project} ${var.environment}."
  assume_role_policy = data.aws_iam_policy_document.connector_assume.json
}

data "aws_iam_policy_document" "connector" {
  count = local.analytics

  statement {
    sid       = "ReadResults"
    actions   = ["dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:Scan"]
    resources = [module.tables["results_table"].arn]
  }

  statement {
    sid = "ListTables"
    # dynamodb:ListTables has no resource-level permissions.
    actions   = ["dynamodb:ListTables"]
    resources = ["*"]
  }

  statement {
    sid     = "ReadSchema"
    actions = ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.results[0].arn,
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${aws_glue_catalog_database.results[0].name}/*",
    ]
  }

  statement {
    sid       = "QueryStatus"
    actions   = ["athena:GetQueryExecution"]
    resources = [aws_athena_workgroup.analytics[0].arn]
  }

  statement {
    sid       = "Spill"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.athena_bucket[0].arn}/spill/*"]
  }

  statement {
    sid       = "SpillBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [module.athena_bucket[0].arn]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.connector_name}*"]
  }
}

resource "aws_iam_role_policy" "connector" {
  count = local.analytics

  name   = "least-privilege"
  role   = aws_iam_role.connector[0].id
  policy = data.aws_iam_policy_document.connector[0].json
}

resource "aws_serverlessapplicationrepository_cloudformation_stack" "dynamodb_connector" {
  count = local.analytics

  name             = local.connector_name
  application_id   = "arn:aws:serverlessrepo:us-east-1:292517598671:applications/AthenaDynamoDBConnector"
  semantic_version = var.athena_dynamodb_connector_version
  capabilities     = ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]

  parameters = {
    AthenaCatalogName = local.connector_name
    SpillBucket       = module.athena_bucket[0].bucket
    SpillPrefix       = "spill"
    LambdaRole        = aws_iam_role.connector[0].arn
    LambdaMemory      = "1024"
    LambdaTimeout     = "300"
    KMSKeyId          = module.kms.key_id
  }

  depends_on = [aws_iam_role_policy.connector]
}

resource "aws_athena_data_catalog" "dynamodb" {
  count = local.analytics

  name        = local.connector_name
  description = "DynamoDB results of ${local.project} ${var.environment} through the Athena DynamoDB connector."
  type        = "LAMBDA"
  parameters = {
    function = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.connector_name}"
  }

  depends_on = [aws_serverlessapplicationrepository_cloudformation_stack.dynamodb_connector]
}

################################################################################
# Alerts archive: SNS -> Firehose (DirectPut) -> s3://<history>/alerts/dt=YYYY-MM-DD/
################################################################################

data "aws_iam_policy_document" "alerts_archive_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "alerts_archive" {
  count = local.analytics

  name               = local.alerts_archive
  description        = "Firehose delivery of the alerts topic into s3://${module.history_bucket.bucket}/${local.alerts_prefix}."
  assume_role_policy = data.aws_iam_policy_document.alerts_archive_assume.json
}

resource "aws_cloudwatch_log_group" "alerts_archive" {
  #checkov:skip=CKV_AWS_338:Retention is a per-environment variable (dev 14, prod 90 days); delivery errors are also kept as objects under errors/alerts/.
  count = local.analytics

  name              = "/aws/kinesisfirehose/${local.alerts_archive}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
}

resource "aws_cloudwatch_log_stream" "alerts_archive" {
  count = local.analytics

  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.alerts_archive[0].name
}

data "aws_iam_policy_document" "alerts_archive" {
  count = local.analytics

  statement {
    sid       = "FindBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [module.history_bucket.arn]
  }

  statement {
    sid     = "WriteAlerts"
    actions = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    resources = [
      "${module.history_bucket.arn}/${local.alerts_prefix}*",
      "${module.history_bucket.arn}/errors/alerts/*",
    ]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }

  statement {
    sid       = "WriteDeliveryLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.alerts_archive[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "alerts_archive" {
  count = local.analytics

  name   = "least-privilege"
  role   = aws_iam_role.alerts_archive[0].id
  policy = data.aws_iam_policy_document.alerts_archive[0].json
}

resource "aws_kinesis_firehose_delivery_stream" "alerts_archive" {
  count = local.analytics

  name        = local.alerts_archive
  destination = "extended_s3"

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = module.kms.key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.alerts_archive[0].arn
    bucket_arn          = module.history_bucket.arn
    prefix              = "${local.alerts_prefix}dt=!{timestamp:yyyy-MM-dd}/"
    error_output_prefix = "errors/alerts/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
    buffering_size      = 5
    buffering_interval  = 300
    compression_format  = "GZIP"
    file_extension      = ".json.gz"
    kms_key_arn         = module.kms.key_arn

    # SNS sends each alert as one record without a trailing newline.
    processing_configuration {
      enabled = true

      processors {
        type = "AppendDelimiterToRecord"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.alerts_archive[0].name
      log_stream_name = aws_cloudwatch_log_stream.alerts_archive[0].name
    }
  }

  depends_on = [aws_iam_role_policy.alerts_archive]
}

# SNS assumes this role to put the alerts into the delivery stream.
data "aws_iam_policy_document" "alerts_archive_subscription_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "alerts_archive_subscription" {
  count = local.analytics

  name               = "${local.alerts_archive}-sns"
  description        = "Lets the alerts topic write into the ${local.alerts_archive} delivery stream."
  assume_role_policy = data.aws_iam_policy_document.alerts_archive_subscription_assume.json
}

data "aws_iam_policy_document" "alerts_archive_subscription" {
  count = local.analytics

  statement {
    sid       = "PutAlerts"
    actions   = ["firehose:DescribeDeliveryStream", "firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.alerts_archive[0].arn]
  }
}

resource "aws_iam_role_policy" "alerts_archive_subscription" {
  count = local.analytics

  name   = "least-privilege"
  role   = aws_iam_role.alerts_archive_subscription[0].id
  policy = data.aws_iam_policy_document.alerts_archive_subscription[0].json
}

resource "aws_sns_topic_subscription" "alerts_archive" {
  count = local.analytics

  topic_arn             = aws_sns_topic.alerts.arn
  protocol              = "firehose"
  endpoint              = aws_kinesis_firehose_delivery_stream.alerts_archive[0].arn
  subscription_role_arn = aws_iam_role.alerts_archive_subscription[0].arn
  raw_message_delivery  = true # the record is Alert.payload() itself, no SNS envelope

  depends_on = [aws_iam_role_policy.alerts_archive_subscription]
}

resource "aws_glue_catalog_table" "alerts" {
  count = local.analytics

  name          = "alerts"
  database_name = aws_glue_catalog_database.history[0].name
  description   = "Alerts archive (Alert.payload(), gzip NDJSON by delivery day), last ${var.analytics_alerts_days} days projected."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "json"
    compressionType             = "gzip"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "NOW-${var.analytics_alerts_days}DAYS,NOW"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "storage.location.template" = "s3://${module.history_bucket.bucket}/${local.alerts_prefix}dt=$${dt}/"
    "has_encrypted_data"        = "true"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${module.history_bucket.bucket}/${local.alerts_prefix}"
    input_format  = "org.apache.hadoop.mapred.TextInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

    ser_de_info {
      serialization_library = "org.openx.data.jsonserde.JsonSerDe"
      parameters = {
        "ignore.malformed.json" = "true"
        "case.insensitive"      = "true"
      }
    }

    dynamic "columns" {
      for_each = local.alert_columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

################################################################################
# QuickSight data source and data sets (direct query: no SPICE capacity to pay for)
################################################################################

resource "aws_quicksight_data_source" "athena" {
  count = local.analytics

  data_source_id = local.analytics_name
  name           = "${local.project} ${var.environment} (Athena)"
  type           = "ATHENA"

  parameters {
    athena {
      work_group = aws_athena_workgroup.analytics[0].name
    }
  }

  ssl_properties {
    disable_ssl = false
  }

  permission {
    principal = var.quicksight_principal_arn
    actions = [
      "quicksight:DescribeDataSource", "quicksight:DescribeDataSourcePermissions",
      "quicksight:PassDataSource", "quicksight:UpdateDataSource", "quicksight:DeleteDataSource",
      "quicksight:UpdateDataSourcePermissions",
    ]
  }
}

# One data set per query in services/sql that the dashboard reads (custom SQL, direct query).
resource "aws_quicksight_data_set" "query" {
  for_each = var.enable_quicksight ? toset(local.quicksight_data_sets) : toset([])

  data_set_id = "${local.analytics_name}_${each.key}"
  name        = "${local.project} ${var.environment} ${replace(each.key, "_", " ")}"
  import_mode = "DIRECT_QUERY"

  physical_table_map {
    physical_table_map_id = each.key

    custom_sql {
      data_source_arn = aws_quicksight_data_source.athena[0].arn
      name            = each.key
      sql_query       = local.analytics_sql[each.key]

      dynamic "columns" {
        for_each = local.analytics_query_columns[each.key]

        content {
          name = columns.value.name
          type = local.quicksight_types[columns.value.type]
        }
      }
    }
  }

  permissions {
    principal = var.quicksight_principal_arn
    actions   = local.quicksight_actions
  }

  depends_on = [aws_athena_data_catalog.dynamodb, aws_glue_catalog_table.results, aws_glue_catalog_table.alerts, aws_glue_catalog_table.bars]
}

resource "aws_quicksight_data_set" "bars" {
  count = local.analytics

  data_set_id = "${local.analytics_name}_bars"
  name        = "${local.project} ${var.environment} bar history"
  import_mode = "DIRECT_QUERY"

  physical_table_map {
    physical_table_map_id = "bars"

    relational_table {
      data_source_arn = aws_quicksight_data_source.athena[0].arn
      catalog         = "AwsDataCatalog"
      schema          = aws_glue_catalog_database.history[0].name
      name            = aws_glue_catalog_table.bars[0].name

      dynamic "input_columns" {
        for_each = concat(
          [for c in local.bar_columns : { name = c.name, type = c.type }],
          [{ name = "symbol", type = "string" }, { name = "year", type = "bigint" }, { name = "month", type = "bigint" }],
        )

        content {
          name = input_columns.value.name
          type = local.quicksight_types[input_columns.value.type]
        }
      }
    }
  }

  permissions {
    principal = var.quicksight_principal_arn
    actions   = local.quicksight_actions
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
