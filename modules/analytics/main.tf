################################################################################
# Analytics layer (create): QuickSight over Athena. Moved from services/analytics.tf (the
# rationale and the layout are described there and in docs/ANALYTICS.md).
#
# - Athena workgroup with SSE-KMS results in a dedicated bucket (connector spill under spill/).
# - Glue tables: bar history on S3 (partition projection on symbol/year/month), the results
#   table in DynamoDB (schema for the Athena DynamoDB connector) and the alerts archive.
# - The Athena DynamoDB connector (Serverless Application Repository) with its own role.
# - Alerts archive: the alerts topic -> Firehose (modules/firehose_s3) -> s3://<history>/alerts/.
# - QuickSight data source, data sets (direct query) and the dashboard (dashboard.tf).
#
# The column lists and the rendered SQL are inputs: the caller derives them (services/ from
# stocksage/stack.json and services/sql) and outputs them too.
################################################################################

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  quicksight_types = { string = "STRING", double = "DECIMAL", bigint = "INTEGER", int = "INTEGER", timestamp = "DATETIME" }
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
  source = "../s3_bucket"
  count  = var.create ? 1 : 0

  bucket                             = var.athena_bucket_name
  kms_key_arn                        = var.kms_key_arn
  force_destroy                      = true # query results and spill only: always disposable
  deny_insecure_transport            = var.deny_insecure_transport
  noncurrent_version_expiration_days = 1
  lifecycle_rules = [
    { id = "expire-results", prefix = "results/", expiration_days = 30 },
    { id = "expire-spill", prefix = "spill/", expiration_days = 1 },
  ]
}

resource "aws_athena_workgroup" "analytics" {
  count = var.create ? 1 : 0

  name          = var.name
  description   = "${var.display_name}: QuickSight and ad-hoc queries."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = 10 * 1024 * 1024 * 1024

    result_configuration {
      output_location = "s3://${module.athena_bucket[0].bucket}/results/"

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}

################################################################################
# Glue catalog: bar history on S3 (partition projection)
################################################################################

resource "aws_glue_catalog_database" "history" {
  count = var.create ? 1 : 0

  name        = var.history_database_name
  description = "Bar history of ${var.display_name} (s3://${var.history_bucket_name}/bars/)."
}

resource "aws_glue_catalog_table" "bars" {
  count = var.create ? 1 : 0

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
    "projection.symbol.values"  = join(",", var.history_symbols)
    "projection.year.type"      = "integer"
    "projection.year.range"     = "1990,2100"
    "projection.month.type"     = "integer"
    "projection.month.range"    = "1,12"
    "projection.month.digits"   = "2"
    "storage.location.template" = "s3://${var.history_bucket_name}/bars/symbol=$${symbol}/year=$${year}/month=$${month}/"
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
    location      = "s3://${var.history_bucket_name}/bars/"
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
      for_each = var.bar_columns

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
  count = var.create ? 1 : 0

  name = var.results_database_name
  # The connector only reads schemas from Glue databases whose location holds this flag.
  location_uri = "dynamo-db-flag"
  description  = "Schema of the DynamoDB results table for the Athena DynamoDB connector."
}

resource "aws_glue_catalog_table" "results" {
  count = var.create ? 1 : 0

  name          = "results"
  database_name = aws_glue_catalog_database.results[0].name
  description   = "Processor results (DynamoDB ${var.results_table_name}), typed from stack.json."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    classification = "dynamodb"
    sourceTable    = var.results_table_name
  }

  storage_descriptor {
    dynamic "columns" {
      for_each = var.result_columns

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
  count = var.create ? 1 : 0

  name               = var.connector_name
  description        = "Athena DynamoDB connector of ${var.display_name}."
  assume_role_policy = data.aws_iam_policy_document.connector_assume.json
}

data "aws_iam_policy_document" "connector" {
  count = var.create ? 1 : 0

  statement {
    sid       = "ReadResults"
    actions   = ["dynamodb:DescribeTable", "dynamodb:Query", "dynamodb:Scan"]
    resources = [var.results_table_arn]
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
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.connector_name}*"]
  }
}

resource "aws_iam_role_policy" "connector" {
  count = var.create ? 1 : 0

  name   = "least-privilege"
  role   = aws_iam_role.connector[0].id
  policy = data.aws_iam_policy_document.connector[0].json
}

resource "aws_serverlessapplicationrepository_cloudformation_stack" "dynamodb_connector" {
  count = var.create ? 1 : 0

  name             = var.connector_name
  application_id   = "arn:aws:serverlessrepo:us-east-1:292517598671:applications/AthenaDynamoDBConnector"
  semantic_version = var.connector_version
  capabilities     = ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"]

  parameters = {
    AthenaCatalogName = var.connector_name
    SpillBucket       = module.athena_bucket[0].bucket
    SpillPrefix       = "spill"
    LambdaRole        = aws_iam_role.connector[0].arn
    LambdaMemory      = "1024"
    LambdaTimeout     = "300"
    KMSKeyId          = var.kms_key_id
  }

  depends_on = [aws_iam_role_policy.connector]
}

resource "aws_athena_data_catalog" "dynamodb" {
  count = var.create ? 1 : 0

  name        = var.connector_name
  description = "DynamoDB results of ${var.display_name} through the Athena DynamoDB connector."
  type        = "LAMBDA"
  parameters = {
    function = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${var.connector_name}"
  }

  depends_on = [aws_serverlessapplicationrepository_cloudformation_stack.dynamodb_connector]
}

################################################################################
# Alerts archive: SNS -> Firehose (DirectPut) -> s3://<history>/alerts/dt=YYYY-MM-DD/
################################################################################

module "alerts_archive" {
  source = "../firehose_s3"
  count  = var.create ? 1 : 0

  name                       = var.alerts_archive_name
  role_description           = "Firehose delivery of the alerts topic into s3://${var.history_bucket_name}/${var.alerts_prefix}."
  bucket_arn                 = var.history_bucket_arn
  kms_key_arn                = var.kms_key_arn
  prefix                     = "${var.alerts_prefix}dt=!{timestamp:yyyy-MM-dd}/"
  error_output_prefix        = "errors/alerts/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
  write_prefixes             = [var.alerts_prefix, "errors/alerts/"]
  write_statement_sid        = "WriteAlerts"
  buffering_size_mb          = 5
  buffering_interval_seconds = 300
  compression_format         = "GZIP"
  file_extension             = ".json.gz"
  log_retention_days         = var.log_retention_days

  # SNS sends each alert as one record without a trailing newline.
  processors = [{ type = "AppendDelimiterToRecord" }]
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
  count = var.create ? 1 : 0

  name               = "${var.alerts_archive_name}-sns"
  description        = "Lets the alerts topic write into the ${var.alerts_archive_name} delivery stream."
  assume_role_policy = data.aws_iam_policy_document.alerts_archive_subscription_assume.json
}

data "aws_iam_policy_document" "alerts_archive_subscription" {
  count = var.create ? 1 : 0

  statement {
    sid       = "PutAlerts"
    actions   = ["firehose:DescribeDeliveryStream", "firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [module.alerts_archive[0].arn]
  }
}

resource "aws_iam_role_policy" "alerts_archive_subscription" {
  count = var.create ? 1 : 0

  name   = "least-privilege"
  role   = aws_iam_role.alerts_archive_subscription[0].id
  policy = data.aws_iam_policy_document.alerts_archive_subscription[0].json
}

resource "aws_sns_topic_subscription" "alerts_archive" {
  count = var.create ? 1 : 0

  topic_arn             = var.alerts_topic_arn
  protocol              = "firehose"
  endpoint              = module.alerts_archive[0].arn
  subscription_role_arn = aws_iam_role.alerts_archive_subscription[0].arn
  raw_message_delivery  = true # the record is Alert.payload() itself, no SNS envelope

  depends_on = [aws_iam_role_policy.alerts_archive_subscription]
}

resource "aws_glue_catalog_table" "alerts" {
  count = var.create ? 1 : 0

  name          = "alerts"
  database_name = aws_glue_catalog_database.history[0].name
  description   = "Alerts archive (Alert.payload(), gzip NDJSON by delivery day), last ${var.alerts_days} days projected."
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                    = "TRUE"
    classification              = "json"
    compressionType             = "gzip"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "NOW-${var.alerts_days}DAYS,NOW"
    "projection.dt.interval"    = "1"
    "projection.dt.unit"        = "DAYS"
    "storage.location.template" = "s3://${var.history_bucket_name}/${var.alerts_prefix}dt=$${dt}/"
    "has_encrypted_data"        = "true"
  }

  partition_keys {
    name = "dt"
    type = "string"
  }

  storage_descriptor {
    location      = "s3://${var.history_bucket_name}/${var.alerts_prefix}"
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
      for_each = var.alert_columns

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
  count = var.create ? 1 : 0

  data_source_id = var.name
  name           = "${var.display_name} (Athena)"
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
  for_each = var.create ? toset(var.data_sets) : toset([])

  data_set_id = "${var.name}_${each.key}"
  name        = "${var.display_name} ${replace(each.key, "_", " ")}"
  import_mode = "DIRECT_QUERY"

  physical_table_map {
    physical_table_map_id = each.key

    custom_sql {
      data_source_arn = aws_quicksight_data_source.athena[0].arn
      name            = each.key
      sql_query       = var.sql[each.key]

      dynamic "columns" {
        for_each = var.query_columns[each.key]

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
  count = var.create ? 1 : 0

  data_set_id = "${var.name}_bars"
  name        = "${var.display_name} bar history"
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
          [for c in var.bar_columns : { name = c.name, type = c.type }],
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

