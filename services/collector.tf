################################################################################
# Collector: ECR repository, data-provider API key (Secrets Manager), ECS cluster with
# FARGATE + FARGATE_SPOT capacity providers, task definition and service in the subnets the
# network root chose for it (prod: private subnets behind NAT; dev: public subnets with a
# public IP and HTTPS-only egress, no NAT).
#
# The variables of the collector that are not in variables.tf are declared here, next to the
# resources that use them. dev/prod read the network root's outputs from its state (fail closed:
# no usable subnets = no plan); local has no network state and gets the cluster and the task
# definition only.
################################################################################

variable "collector_image_tag" {
  description = "Tag of the collector image in this stack's ECR repository (immutable tags: use a version or git SHA). Null: use collector_image as given."
  type        = string
  default     = null

  validation {
    condition     = var.collector_image_tag == null || can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", coalesce(var.collector_image_tag, "x"))) && var.collector_image_tag != "latest"
    error_message = "collector_image_tag must be a valid, non-latest image tag."
  }
}

variable "collector_capacity_provider_strategy" {
  description = "Capacity provider strategy of the collector: FARGATE_SPOT is ~70% cheaper and may be interrupted (2-minute warning, SIGTERM: the collector flushes and a new task resumes)."
  type = list(object({
    capacity_provider = string
    weight            = number
    base              = optional(number, 0)
  }))
  default = [{ capacity_provider = "FARGATE", weight = 1, base = 1 }]
}

variable "collector_stop_timeout_seconds" {
  description = "Seconds between SIGTERM and SIGKILL (Fargate maximum 120). The collector flushes its Kinesis buffer on SIGTERM: one PutRecords round trip per 500 buffered bars plus bounded retries, well under 30 s."
  type        = number
  default     = 30

  validation {
    condition     = var.collector_stop_timeout_seconds >= 10 && var.collector_stop_timeout_seconds <= 120
    error_message = "collector_stop_timeout_seconds must be between 10 and 120."
  }
}

variable "collector_source" {
  description = "What the collector runs: live (Alpaca Market Data v2 bars, polled) or replay (bundled real data; needs an image built with WITH_REPLAY=1)."
  type        = string
  default     = "live"

  validation {
    condition     = contains(["live", "replay"], var.collector_source)
    error_message = "collector_source must be live or replay."
  }
}

variable "collector_symbols" {
  description = "Symbols the collector streams."
  type        = list(string)
  default     = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA"]

  validation {
    condition     = length(var.collector_symbols) > 0 && alltrue([for s in var.collector_symbols : can(regex("^[A-Z0-9][A-Z0-9.\\-=^]{0,19}$", s))])
    error_message = "collector_symbols must be upper-case symbols (the Bar symbol pattern)."
  }
}

variable "collector_timeframe" {
  description = "Bar timeframe requested from the provider (Alpaca: 1Min, 5Min, 15Min, 1Hour, 1Day)."
  type        = string
  default     = "1Min"

  validation {
    condition     = contains(["1Min", "5Min", "15Min", "30Min", "1Hour", "1Day"], var.collector_timeframe)
    error_message = "collector_timeframe must be one of 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day."
  }
}

variable "collector_data_feed" {
  description = "Alpaca data feed: iex (free plan) or sip (paid)."
  type        = string
  default     = "iex"

  validation {
    condition     = contains(["iex", "sip"], var.collector_data_feed)
    error_message = "collector_data_feed must be iex or sip."
  }
}

data "terraform_remote_state" "network" {
  count = var.network_state == null ? 0 : 1

  backend = "s3"
  config  = var.network_state

  lifecycle {
    postcondition {
      condition     = length(try(self.outputs.collector_subnet_ids, [])) > 0 && try(self.outputs.collector_security_group_id, "") != ""
      error_message = "The network state has no collector_subnet_ids / collector_security_group_id outputs: apply the network root of this environment first (scripts/tf.sh network <env> apply)."
    }
  }
}

locals {
  network = one(data.terraform_remote_state.network[*].outputs)

  collector_subnet_ids         = local.network == null ? [] : local.network.collector_subnet_ids
  collector_security_group_ids = local.network == null ? [] : [local.network.collector_security_group_id]
  collector_assign_public_ip   = local.network == null ? false : local.network.collector_assign_public_ip
  # The service (and its heartbeat alarm) exist only with subnets and a task to run.
  collector_runs = length(local.collector_subnet_ids) > 0 && var.collector_desired_count > 0

  collector_image = var.collector_image_tag == null ? var.collector_image : "${aws_ecr_repository.collector.repository_url}:${var.collector_image_tag}"

  # Secret JSON: {"key_id": "...", "secret_key": "..."} (put-secret-value, README "Deploy to AWS").
  collector_secrets = {
    ALPACA_API_KEY_ID     = "${aws_secretsmanager_secret.data_api.arn}:key_id::"
    ALPACA_API_SECRET_KEY = "${aws_secretsmanager_secret.data_api.arn}:secret_key::"
  }
}

################################################################################
# Image repository
################################################################################

resource "aws_ecr_repository" "collector" {
  name                 = local.names.collector
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.history_force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.kms.key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "collector" {
  repository = aws_ecr_repository.collector.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 20 most recent images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

################################################################################
# Data-provider API key (value set out of band, never in Terraform state)
################################################################################

resource "aws_secretsmanager_secret" "data_api" {
  #checkov:skip=CKV2_AWS_57:A third-party market-data API key cannot be rotated by a Lambda; it is rotated in the provider's dashboard and written with put-secret-value (README, Deploy to AWS).
  name                    = "${local.names.collector}-data-api"
  description             = "Market-data API key of the collector: JSON {\"key_id\", \"secret_key\"} (Alpaca)."
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = var.environment == "prod" ? 30 : 0
}

################################################################################
# Cluster, task definition, service
################################################################################

module "collector" {
  source = "../modules/ecs_fargate_service"

  cluster_name       = local.names.cluster
  name               = local.names.collector
  container_name     = "collector"
  image              = local.collector_image
  cpu                = var.collector_cpu
  memory             = var.collector_memory
  container_insights = !local.is_local
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  subnet_ids         = local.collector_subnet_ids
  security_group_ids = local.collector_security_group_ids
  assign_public_ip   = local.collector_assign_public_ip
  desired_count      = var.collector_desired_count

  capacity_provider_strategy = var.collector_capacity_provider_strategy
  ecr_repository_arns        = [aws_ecr_repository.collector.arn]
  stop_timeout               = var.collector_stop_timeout_seconds
  # The image's ENTRYPOINT is `python -m stocksage.collector`; options come from the environment.
  command        = [var.collector_source]
  writable_paths = ["/tmp"]
  # The Python package is named after the project (stocksage.collector).
  health_check_command = ["CMD", "python", "-m", "${local.project}.collector", "health"]
  secrets              = var.collector_source == "live" ? local.collector_secrets : {}
  secret_arns          = var.collector_source == "live" ? [aws_secretsmanager_secret.data_api.arn] : []
  secrets_kms_key_arn  = module.kms.key_arn

  environment = {
    STREAM_NAME           = aws_kinesis_stream.bars.name
    LOG_LEVEL             = var.log_level
    COLLECTOR_SYMBOLS     = join(",", var.collector_symbols)
    COLLECTOR_TIMEFRAME   = var.collector_timeframe
    ALPACA_FEED           = var.collector_data_feed
    COLLECTOR_HEALTH_FILE = "/tmp/collector-health.json"
    # The live source's cursor (last bar time per symbol) survives task replacement in S3;
    # unsent bars at SIGTERM are spilled to the task's writable /tmp and sent first at the
    # next start of the same task; the flush stops 10 s before ECS's SIGKILL.
    COLLECTOR_CURSOR                = "s3://${module.history_bucket.bucket}/${local.collector_cursor_key}"
    COLLECTOR_SPILL_FILE            = "/tmp/collector-spill.jsonl"
    COLLECTOR_STOP_DEADLINE_SECONDS = tostring(var.collector_stop_timeout_seconds - 10)
    POWERTOOLS_SERVICE_NAME         = "${local.project}-${local.stack.resources.collector}"
    POWERTOOLS_METRICS_NAMESPACE    = local.project
  }

  task_policy_statements = {
    # Exactly the collector's calls: stocksage.collector.sink.kinesis_sink.KinesisSink -> put_records.
    PutBars = {
      actions   = ["kinesis:PutRecords"]
      resources = [aws_kinesis_stream.bars.arn]
    }
    EncryptBars = {
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [module.kms.key_arn]
    }
    # stocksage.collector cursor_store("s3://...") -> get_object / put_object of one key.
    Cursor = {
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = ["${module.history_bucket.arn}/${local.collector_cursor_key}"]
    }
    # Without s3:ListBucket, S3 answers GetObject of a missing key with 403 AccessDenied, not
    # 404 NoSuchKey: the first start (no cursor yet) would look like a permission error. Only
    # the cursor key may be listed.
    CursorExists = {
      actions   = ["s3:ListBucket"]
      resources = [module.history_bucket.arn]
      conditions = [{
        test     = "StringEquals"
        variable = "s3:prefix"
        values   = [local.collector_cursor_key]
      }]
    }
  }
}

locals {
  collector_cursor_key = "collector/cursor.json"
}
