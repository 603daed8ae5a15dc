variable "create" {
  description = "Create the analytics layer (every resource of this module); false creates nothing. Needs a QuickSight subscription in the account."
  type        = bool
  default     = true
}

variable "name" {
  description = "Name of the Athena workgroup, QuickSight data source and the prefix of the data set and dashboard ids (lower case, digits, '_')."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,100}$", var.name))
    error_message = "name must be 1-100 lower-case letters, digits or '_' (Athena and Glue names)."
  }
}

variable "display_name" {
  description = "Human name of the stack in descriptions and QuickSight names (e.g. \"<project> <environment>\")."
  type        = string

  validation {
    condition     = length(trimspace(var.display_name)) > 0
    error_message = "display_name must not be empty."
  }
}

variable "history_database_name" {
  description = "Glue database of the S3 tables (bars, alerts)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.history_database_name))
    error_message = "history_database_name must be lower-case letters, digits or '_'."
  }
}

variable "results_database_name" {
  description = "Glue database holding the schema of the DynamoDB results table for the connector."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.results_database_name))
    error_message = "results_database_name must be lower-case letters, digits or '_'."
  }
}

variable "connector_name" {
  description = "Name of the Athena DynamoDB connector: its Lambda, CloudFormation stack, IAM role and Athena catalog."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{1,64}$", var.connector_name))
    error_message = "connector_name must be 1-64 lower-case letters, digits or '-'."
  }
}

variable "connector_version" {
  description = "Semantic version of the AthenaDynamoDBConnector application in the Serverless Application Repository."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.connector_version))
    error_message = "connector_version must be a semantic version (e.g. 2023.46.2)."
  }
}

variable "athena_bucket_name" {
  description = "Bucket created for Athena query results (results/) and connector spill (spill/); globally unique."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.athena_bucket_name))
    error_message = "athena_bucket_name must be 3-63 lower-case letters, digits, '.' and '-'."
  }
}

variable "deny_insecure_transport" {
  description = "TLS-only policy on the Athena bucket; off only for a plain-HTTP emulator."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key (ARN): Athena results, spill, alerts archive, log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "kms_key_id" {
  description = "ID of the same KMS key (the connector's KMSKeyId parameter)."
  type        = string
}

variable "history_bucket_name" {
  description = "Bucket of the bar history (bars/) and of the alerts archive (alerts_prefix)."
  type        = string
}

variable "history_bucket_arn" {
  description = "ARN of the history bucket."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:s3:::", var.history_bucket_arn))
    error_message = "history_bucket_arn must be an S3 bucket ARN."
  }
}

variable "history_symbols" {
  description = "Symbols the bars table's partition projection enumerates."
  type        = list(string)

  validation {
    condition     = length(var.history_symbols) > 0
    error_message = "history_symbols must name at least one symbol."
  }
}

variable "results_table_name" {
  description = "DynamoDB results table the connector reads."
  type        = string
}

variable "results_table_arn" {
  description = "ARN of the DynamoDB results table."
  type        = string
}

variable "results_partition_key" {
  description = "Partition key of the results table (the dashboard's symbol filter column)."
  type        = string
  default     = "symbol"
}

variable "alerts_topic_arn" {
  description = "SNS topic whose messages are archived (raw delivery into Firehose)."
  type        = string
}

variable "alerts_prefix" {
  description = "Key prefix of the alerts archive in the history bucket (ends with /)."
  type        = string
  default     = "alerts/"

  validation {
    condition     = endswith(var.alerts_prefix, "/") && !startswith(var.alerts_prefix, "/")
    error_message = "alerts_prefix must end with / and not start with /."
  }
}

variable "alerts_archive_name" {
  description = "Name of the alerts archive delivery stream (and of its role; the SNS role adds -sns)."
  type        = string
}

variable "alerts_days" {
  description = "Days of archived alerts the alerts table projects (its partition range ends today)."
  type        = number
  default     = 90

  validation {
    condition     = var.alerts_days >= 1 && var.alerts_days <= 3650 && floor(var.alerts_days) == var.alerts_days
    error_message = "alerts_days must be a whole number of days between 1 and 3650."
  }
}

variable "log_retention_days" {
  description = "Retention of the alerts archive's delivery log group, in days."
  type        = number
  default     = 30
}

variable "bar_columns" {
  description = "Columns of the bars table except the partition columns (name, Hive type)."
  type        = list(object({ name = string, type = string }))
}

variable "result_columns" {
  description = "Columns of the results table (name, Hive type), keys first."
  type        = list(object({ name = string, type = string }))
}

variable "alert_columns" {
  description = "Columns of the alerts table (name, Hive type)."
  type        = list(object({ name = string, type = string }))
}

variable "sql" {
  description = "Rendered Athena SQL by query name; each name in data_sets backs a custom-SQL data set."
  type        = map(string)
}

variable "data_sets" {
  description = "Queries (keys of sql and query_columns) that back a QuickSight data set each."
  type        = list(string)

  validation {
    condition     = length(var.data_sets) > 0
    error_message = "data_sets must name at least one query."
  }
}

variable "query_columns" {
  description = "Output columns (name, SQL type: string, double, bigint, int, timestamp) of each query in data_sets."
  type        = map(list(object({ name = string, type = string })))

  validation {
    condition     = alltrue([for cols in values(var.query_columns) : alltrue([for c in cols : contains(["string", "double", "bigint", "int", "timestamp"], c.type)])])
    error_message = "query_columns types must be string, double, bigint, int or timestamp."
  }
}

variable "quicksight_principal_arn" {
  description = "QuickSight user or group ARN given owner permissions on the data source, data sets and dashboard."
  type        = string
  default     = null

  validation {
    condition     = var.quicksight_principal_arn == null || can(regex("^arn:aws[a-zA-Z-]*:quicksight:", coalesce(var.quicksight_principal_arn, "x")))
    error_message = "quicksight_principal_arn must be a QuickSight user or group ARN."
  }

  validation {
    condition     = !var.create || var.quicksight_principal_arn != null
    error_message = "create needs quicksight_principal_arn."
  }
}

variable "indicators" {
  description = "Indicator windows the dashboard's panels are named after (stack.json indicators)."
  type = object({
    sma_window  = number
    ema_fast    = number
    ema_slow    = number
    macd_signal = number
    rsi_window  = number
    bb_window   = number
    bb_dev      = number
  })
}

variable "dashboard_time_granularity" {
  description = "Time axis granularity of the dashboard's charts (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH)."
  type        = string
  default     = "DAY"

  validation {
    condition     = contains(["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH"], var.dashboard_time_granularity)
    error_message = "dashboard_time_granularity must be one of SECOND, MINUTE, HOUR, DAY, WEEK, MONTH."
  }
}

variable "dashboard_alerts_rows" {
  description = "Rows per page of the recent alerts table."
  type        = number
  default     = 20

  validation {
    condition     = var.dashboard_alerts_rows >= 5 && var.dashboard_alerts_rows <= 500 && floor(var.dashboard_alerts_rows) == var.dashboard_alerts_rows
    error_message = "dashboard_alerts_rows must be a whole number between 5 and 500."
  }
}
