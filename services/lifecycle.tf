################################################################################
# Model lifecycle: scheduled retraining and gated promotion (README "Model lifecycle").
#
#   EventBridge Scheduler rate(3 days) -> retrain Lambda -> SageMaker CreateTrainingJob
#   (script mode: sagemaker/train.py over s3://<history>/bars/, pinned sklearn image)
#   -> "SageMaker Training Job State Change" (EventBridge rule) -> promote Lambda
#   -> quality gate -> CreateModel + CreateEndpointConfig + UpdateEndpoint; every version
#   recorded in the model-versions table (main.tf local.tables). Variables of this feature are
#   declared here, next to the resources that use them.
################################################################################

variable "retrain_schedule_expression" {
  description = "EventBridge Scheduler expression of the retrain schedule (stack.json lifecycle.schedule_expression is the documented default)."
  type        = string
  default     = "rate(3 days)"

  validation {
    condition     = can(regex("^(rate|cron|at)\\(.+\\)$", var.retrain_schedule_expression))
    error_message = "retrain_schedule_expression must be rate(...), cron(...) or at(...)."
  }
}

variable "retrain_schedule_enabled" {
  description = "Whether the retrain schedule fires (the local runtime fires it on demand: make retrain)."
  type        = bool
  default     = true
}

variable "retrain_window_days" {
  description = "Training window in days before the schedule tick; 0 = the whole history."
  type        = number
  default     = 0

  validation {
    condition     = var.retrain_window_days >= 0 && floor(var.retrain_window_days) == var.retrain_window_days
    error_message = "retrain_window_days must be a whole number >= 0."
  }
}

variable "training_instance_type" {
  description = "Instance type of the training jobs."
  type        = string
  default     = "ml.m5.large"

  validation {
    condition     = can(regex("^ml\\.", var.training_instance_type))
    error_message = "training_instance_type must be an ml.* instance type."
  }
}

variable "training_max_runtime_seconds" {
  description = "Stopping condition of a training job (MaxRuntimeInSeconds)."
  type        = number
  default     = 3600

  validation {
    condition     = var.training_max_runtime_seconds >= 60 && var.training_max_runtime_seconds <= 86400
    error_message = "training_max_runtime_seconds must be between 60 and 86400."
  }
}

variable "model_hyperparameters" {
  description = "Model hyperparameters of scheduled training (model_type logreg|hgb, c = inverse L2 strength)."
  type = object({
    model_type = string
    c          = number
  })
  default = { model_type = "logreg", c = 0.001 }

  validation {
    condition     = contains(["logreg", "hgb"], var.model_hyperparameters.model_type) && var.model_hyperparameters.c > 0
    error_message = "model_type must be logreg or hgb and c > 0."
  }
}

variable "gate" {
  description = "Quality gate of the promote Lambda: CI lower bounds must exceed min_margin (nats/row); minimum holdout rows and rows compared with the serving model."
  type = object({
    min_margin        = number
    min_holdout_rows  = number
    min_champion_rows = number
  })
  default = { min_margin = 0, min_holdout_rows = 200, min_champion_rows = 100 }

  validation {
    condition     = var.gate.min_margin >= 0 && var.gate.min_holdout_rows >= 1 && var.gate.min_champion_rows >= 1
    error_message = "gate: min_margin >= 0, row minimums >= 1."
  }
}

locals {
  lifecycle_cfg = local.stack.lifecycle
  history_arn   = module.history_bucket.arn
  job_prefix    = local.names.retrain_function
  sm_arn        = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}"
  # SageMaker ARNs carry lower-cased names.
  training_jobs_arn   = "${local.sm_arn}:training-job/${lower(local.job_prefix)}-*"
  endpoint_models_arn = "${local.sm_arn}:model/${lower(local.names.endpoint)}-*"
  endpoint_cfgs_arn   = "${local.sm_arn}:endpoint-config/${lower(local.names.endpoint)}-*"
  # Role of the endpoint's models (modules/sagemaker_endpoint: "<endpoint>-sagemaker").
  endpoint_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/${local.names.endpoint}-sagemaker"
  lifecycle_layers  = concat(aws_lambda_layer_version.dependencies[*].arn, var.processor_layers)
}

# Same framework image as the endpoint (pinned tag): training and serving share sklearn.
data "aws_sagemaker_prebuilt_ecr_image" "training" {
  repository_name = "sagemaker-scikit-learn"
  image_tag       = var.sklearn_image_tag
}

################################################################################
# SageMaker execution role of the training jobs
################################################################################

data "aws_iam_policy_document" "training_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "training" {
  name               = local.names.training_role
  description        = "Execution role of the scheduled training jobs."
  assume_role_policy = data.aws_iam_policy_document.training_assume.json
}

data "aws_iam_policy_document" "training" {
  statement {
    sid     = "ReadHistoryCodeAndServingModel"
    actions = ["s3:GetObject"]
    resources = [
      "${local.history_arn}/${local.lifecycle_cfg.history_prefix}*",
      "${local.history_arn}/${local.lifecycle_cfg.source_key}",
      "${local.history_arn}/model-artifacts/*",
    ]
  }

  statement {
    sid       = "ListHistory"
    actions   = ["s3:ListBucket"]
    resources = [local.history_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.lifecycle_cfg.history_prefix}*", "model-artifacts/*", "code/*"]
    }
  }

  statement {
    sid       = "WriteModelArtifacts"
    actions   = ["s3:PutObject"]
    resources = ["${local.history_arn}/${local.lifecycle_cfg.output_prefix}/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }

  # The job's volume and output use KmsKeyId: SageMaker creates grants for its resources.
  statement {
    sid       = "GrantDataKeyToSageMaker"
    actions   = ["kms:CreateGrant", "kms:DescribeKey"]
    resources = [module.kms.key_arn]

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid       = "WriteTrainingLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/TrainingJobs:*"]
  }

  statement {
    sid = "PublishTrainingMetrics"
    # cloudwatch:PutMetricData has no resource-level permissions; limited to SageMaker namespaces.
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

resource "aws_iam_role_policy" "training" {
  name   = "least-privilege"
  role   = aws_iam_role.training.id
  policy = data.aws_iam_policy_document.training.json
}

# The endpoint's models must read promoted artifacts too (the module only grants the bootstrap key).
data "aws_iam_policy_document" "endpoint_promoted_models" {
  statement {
    sid       = "ReadPromotedModels"
    actions   = ["s3:GetObject"]
    resources = ["${local.history_arn}/${local.lifecycle_cfg.output_prefix}/*"]
  }
}

resource "aws_iam_role_policy" "endpoint_promoted_models" {
  count = var.create_endpoint ? 1 : 0

  name   = "promoted-model-artifacts"
  role   = element(split("/", module.endpoint[0].execution_role_arn), 1)
  policy = data.aws_iam_policy_document.endpoint_promoted_models.json
}

################################################################################
# Retrain and promote Lambdas (one module call, for_each)
#
# Both are invoked asynchronously (Scheduler, EventBridge): bounded retries, then the event
# and its error go to the lifecycle failure queue (on-failure destination), alarmed on in
# observability.tf. The statements are exactly the calls of lambdas/retrain.py and
# lambdas/promote.py (tests/unit/test_terraform_contracts.py derives them from the code).
################################################################################

locals {
  # kms:CreateGrant only for grants SageMaker creates for its own resources (training volume
  # and output, endpoint storage): CreateTrainingJob / CreateEndpointConfig + UpdateEndpoint
  # with KmsKeyId need the caller to be able to grant the key (SageMaker API reference).
  grant_for_aws_resources = [{ test = "Bool", variable = "kms:GrantIsForAWSResource", values = ["true"] }]
  passed_to_sagemaker     = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["sagemaker.amazonaws.com"] }]

  lifecycle_functions = {
    retrain = {
      name        = local.names.retrain_function
      description = "Schedule tick -> one idempotent SageMaker training job."
      handler     = "lambdas.retrain.lambda_handler"
      timeout     = 60
      # Exactly the variables RetrainSettings.from_env() reads.
      environment_variables = {
        HISTORY_BUCKET               = module.history_bucket.bucket
        HISTORY_PREFIX               = local.lifecycle_cfg.history_prefix
        SOURCE_KEY                   = local.lifecycle_cfg.source_key
        OUTPUT_PREFIX                = local.lifecycle_cfg.output_prefix
        JOB_PREFIX                   = local.job_prefix
        TRAINING_ROLE_ARN            = aws_iam_role.training.arn
        TRAINING_IMAGE               = data.aws_sagemaker_prebuilt_ecr_image.training.registry_path
        TRAINING_INSTANCE_TYPE       = var.training_instance_type
        TRAINING_VOLUME_GB           = "5"
        TRAINING_MAX_RUNTIME_SECONDS = tostring(var.training_max_runtime_seconds)
        KMS_KEY_ARN                  = module.kms.key_arn
        TRAINING_WINDOW_DAYS         = tostring(var.retrain_window_days)
        MODEL_TYPE                   = var.model_hyperparameters.model_type
        MODEL_C                      = tostring(var.model_hyperparameters.c)
        ENDPOINT_NAME                = local.names.endpoint
        VERSIONS_TABLE               = module.tables["versions_table"].name
        POWERTOOLS_SERVICE_NAME      = "${local.project}-${local.stack.resources.retrain_function}"
        POWERTOOLS_METRICS_NAMESPACE = local.project
        LOG_LEVEL                    = var.log_level
      }
      policy_statements = {
        CreateTrainingJob = {
          actions   = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"]
          resources = [local.training_jobs_arn]
        }
        PassTrainingRole = {
          actions    = ["iam:PassRole"]
          resources  = [aws_iam_role.training.arn]
          conditions = local.passed_to_sagemaker
        }
        GrantTrainingKey = {
          actions    = ["kms:CreateGrant", "kms:DescribeKey"]
          resources  = [module.kms.key_arn]
          conditions = local.grant_for_aws_resources
        }
        ReadServingEndpoint = {
          actions   = ["sagemaker:DescribeEndpoint"]
          resources = [local.endpoint_arn]
        }
        ReadServingModel = {
          actions   = ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"]
          resources = [local.endpoint_cfgs_arn, local.endpoint_models_arn]
        }
        ReadServingArtifact = {
          actions   = ["s3:GetObject"]
          resources = ["${local.history_arn}/model-artifacts/*"]
        }
        RecordVersion = {
          actions   = ["dynamodb:PutItem"]
          resources = [module.tables["versions_table"].arn]
        }
      }
    }
    promote = {
      name        = local.names.promote_function
      description = "Finished training job -> version record, quality gate, endpoint update."
      handler     = "lambdas.promote.lambda_handler"
      timeout     = 120
      # Exactly the variables PromoteSettings.from_env() reads.
      environment_variables = {
        ENDPOINT_NAME                = local.names.endpoint
        VERSIONS_TABLE               = module.tables["versions_table"].name
        JOB_PREFIX                   = local.job_prefix
        GATE_MIN_MARGIN              = tostring(var.gate.min_margin)
        GATE_MIN_HOLDOUT_ROWS        = tostring(var.gate.min_holdout_rows)
        GATE_MIN_CHAMPION_ROWS       = tostring(var.gate.min_champion_rows)
        POWERTOOLS_SERVICE_NAME      = "${local.project}-${local.stack.resources.promote_function}"
        POWERTOOLS_METRICS_NAMESPACE = local.project
        LOG_LEVEL                    = var.log_level
      }
      policy_statements = {
        ReadTrainingJobs = {
          actions   = ["sagemaker:DescribeTrainingJob"]
          resources = [local.training_jobs_arn]
        }
        ReadArtifacts = {
          actions   = ["s3:GetObject"]
          resources = ["${local.history_arn}/model-artifacts/*"]
        }
        UpdateEndpoint = {
          actions   = ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"]
          resources = [local.endpoint_arn, local.endpoint_cfgs_arn]
        }
        CreateModelVersion = {
          actions   = ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:AddTags"]
          resources = [local.endpoint_models_arn, local.endpoint_cfgs_arn]
        }
        PassModelRole = {
          actions    = ["iam:PassRole"]
          resources  = [local.endpoint_role_arn]
          conditions = local.passed_to_sagemaker
        }
        GrantEndpointKey = {
          actions    = ["kms:CreateGrant", "kms:DescribeKey"]
          resources  = [module.kms.key_arn]
          conditions = local.grant_for_aws_resources
        }
        RecordVersions = {
          actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
          resources = [module.tables["versions_table"].arn]
        }
      }
    }
  }
}

module "lifecycle_function" {
  source   = "../modules/lambda_function"
  for_each = local.lifecycle_functions

  function_name      = each.value.name
  description        = each.value.description
  runtime            = "python3.12"
  handler            = each.value.handler
  zip_path           = var.processor_zip
  layers             = local.lifecycle_layers
  memory_size        = 256
  timeout            = each.value.timeout
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days

  environment_variables = each.value.environment_variables
  policy_statements     = each.value.policy_statements

  create_async_event_config        = true
  async_on_failure_destination_arn = module.lifecycle_failures_queue.arn
  async_maximum_retry_attempts     = 2
  async_maximum_event_age_seconds  = 3600
}

################################################################################
# Lifecycle failure queue: on-failure destination of both functions and dead-letter queue of
# the Scheduler and EventBridge targets (events that never reached a function).
################################################################################

module "lifecycle_failures_queue" {
  source = "../modules/sqs_queue"

  name                      = local.names.lifecycle_failure_queue
  kms_master_key_id         = module.kms.key_arn
  message_retention_seconds = 1209600
  deny_insecure_transport   = local.deny_insecure_transport
  policy_statements = [
    # EventBridge delivers a rule target's undeliverable events with its service principal,
    # limited to our rule (Scheduler uses its execution role instead, below).
    {
      sid        = "AllowTrainingStateRuleDeadLetters"
      actions    = ["sqs:SendMessage"]
      principals = [{ type = "Service", identifiers = ["events.amazonaws.com"] }]
      conditions = [{ test = "ArnEquals", variable = "aws:SourceArn", values = [aws_cloudwatch_event_rule.training_state.arn] }]
    },
  ]
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.names.retrain_schedule}-scheduler"
  description        = "Role EventBridge Scheduler assumes to invoke the retrain Lambda."
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeRetrain"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.lifecycle_function["retrain"].function_arn, "${module.lifecycle_function["retrain"].function_arn}:*"]
  }

  statement {
    sid       = "SendDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [module.lifecycle_failures_queue.arn]
  }

  # Decrypt the schedule's input; GenerateDataKey for the KMS-encrypted dead-letter queue.
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "least-privilege"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# Only with an endpoint: retraining compares against and promotes to the serving model, so
# without one every tick would only fail (the function also says so in its log and skips).
resource "aws_scheduler_schedule" "retrain" {
  count = var.create_endpoint ? 1 : 0

  name                = local.names.retrain_schedule
  description         = "Retrain the next-bar model on the S3 history."
  schedule_expression = var.retrain_schedule_expression
  state               = var.retrain_schedule_enabled ? "ENABLED" : "DISABLED"
  kms_key_arn         = module.kms.key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.lifecycle_function["retrain"].function_arn
    role_arn = aws_iam_role.scheduler.arn
    # Context attributes are filled in by Scheduler (and by the local runtime); jsonencode
    # escapes < and >, which Scheduler would not recognise.
    input = replace(replace(jsonencode({
      source         = "${local.project}.scheduler"
      schedule_arn   = "<aws.scheduler.schedule-arn>"
      scheduled_time = "<aws.scheduler.scheduled-time>"
    }), "\\u003c", "<"), "\\u003e", ">")

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = module.lifecycle_failures_queue.arn
    }
  }
}

################################################################################
# The training-job state-change rule -> promote Lambda
################################################################################

resource "aws_cloudwatch_event_rule" "training_state" {
  name        = local.names.training_state_rule
  description = "Our training jobs reaching a final state -> promote Lambda."
  event_pattern = jsonencode({
    source        = ["aws.sagemaker"]
    "detail-type" = ["SageMaker Training Job State Change"]
    detail = {
      TrainingJobName   = [{ prefix = "${local.job_prefix}-" }]
      TrainingJobStatus = ["Completed", "Failed", "Stopped"]
    }
  })
}

resource "aws_cloudwatch_event_target" "promote" {
  rule      = aws_cloudwatch_event_rule.training_state.name
  target_id = "promote"
  arn       = module.lifecycle_function["promote"].function_arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 4
  }

  dead_letter_config {
    arn = module.lifecycle_failures_queue.arn
  }
}

resource "aws_lambda_permission" "promote_from_rule" {
  statement_id  = "AllowTrainingStateRule"
  action        = "lambda:InvokeFunction"
  function_name = module.lifecycle_function["promote"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.training_state.arn
}

################################################################################
# Outputs of the lifecycle
################################################################################

output "versions_table" {
  description = "Model-versions table name."
  value       = module.tables["versions_table"].name
}

output "retrain_function_name" {
  description = "Retrain Lambda function name."
  value       = module.lifecycle_function["retrain"].function_name
}

output "promote_function_name" {
  description = "Promote Lambda function name."
  value       = module.lifecycle_function["promote"].function_name
}

output "retrain_schedule_name" {
  description = "EventBridge Scheduler schedule of the retrain Lambda (default group), or null without an endpoint (create_endpoint = false)."
  value       = one(aws_scheduler_schedule.retrain[*].name)
}

output "training_state_rule_name" {
  description = "EventBridge rule routing training-job state changes to the promote Lambda."
  value       = aws_cloudwatch_event_rule.training_state.name
}

output "lifecycle_failure_queue_url" {
  description = "Queue of failed retrain/promote invocations and undeliverable schedule/rule events."
  value       = module.lifecycle_failures_queue.url
}

output "training_job_prefix" {
  description = "Name prefix of the scheduled training jobs."
  value       = local.job_prefix
}

output "training_image_uri" {
  description = "Pinned SageMaker scikit-learn framework image of the training jobs."
  value       = data.aws_sagemaker_prebuilt_ecr_image.training.registry_path
}

# State moves of existing deployments (retrain and promote were two module blocks; the schedule
# had no count).
moved {
  from = module.retrain
  to   = module.lifecycle_function["retrain"]
}

moved {
  from = module.promote
  to   = module.lifecycle_function["promote"]
}

moved {
  from = aws_scheduler_schedule.retrain
  to   = aws_scheduler_schedule.retrain[0]
}
