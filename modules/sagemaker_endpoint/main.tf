data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

data "aws_sagemaker_prebuilt_ecr_image" "this" {
  repository_name = var.framework_repository
  image_tag       = var.framework_image_tag
  region          = data.aws_region.current.name
}

locals {
  serverless = var.instance_type == null
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  model_url  = "s3://${var.bucket_name}/${var.model_artifact_key}"
  sourcedir  = "s3://${var.bucket_name}/${var.source_dir_key}"
  environment = merge(var.container_environment, {
    SAGEMAKER_PROGRAM             = var.program
    SAGEMAKER_SUBMIT_DIRECTORY    = local.sourcedir
    SAGEMAKER_CONTAINER_LOG_LEVEL = "20"
    SAGEMAKER_REGION              = data.aws_region.current.name
  })
  # Models and endpoint configurations are immutable; the names carry a hash of their content
  # at creation. Terraform creates the bootstrap pair once; later changes are ignored (lifecycle
  # below): the model lifecycle (promote Lambda, make rollback) owns what serves.
  model_hash  = substr(sha256(jsonencode([data.aws_sagemaker_prebuilt_ecr_image.this.registry_path, local.model_url, local.environment])), 0, 8)
  config_hash = substr(sha256(jsonencode([var.instance_type, var.initial_instance_count, var.serverless_memory_mb, var.serverless_max_concurrency, local.model_hash])), 0, 8)
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.endpoint_name}-sagemaker"
  description        = "Execution role of the ${var.endpoint_name} SageMaker model."
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadModelAndCode"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${var.model_artifact_key}", "${local.bucket_arn}/${var.source_dir_key}"]
  }

  statement {
    sid       = "ListBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
  }

  statement {
    sid       = "DecryptArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteEndpointLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:*:log-group:/aws/sagemaker/Endpoints/${var.endpoint_name}*"]
  }

  statement {
    sid = "PublishMetrics"
    # cloudwatch:PutMetricData has no resource-level permissions; limit it to SageMaker namespaces.
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_sagemaker_model" "this" {
  #checkov:skip=CKV_AWS_370:Script mode: SAGEMAKER_SUBMIT_DIRECTORY is an s3:// sourcedir.tar.gz that the scikit-learn serving container downloads itself with the execution role at start; EnableNetworkIsolation gives the container neither network nor credentials, so the model would never turn InService. Isolation needs the code inside model.tar.gz (code/, SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code), a packaging change of train.py's output (README Operations). Meanwhile the role may read only the artifact objects and the code object, and write only its own log groups.
  name               = "${var.endpoint_name}-${local.model_hash}"
  execution_role_arn = aws_iam_role.this.arn

  primary_container {
    image          = data.aws_sagemaker_prebuilt_ecr_image.this.registry_path
    mode           = "SingleModel"
    model_data_url = local.model_url

    environment = local.environment
  }

  tags = var.tags

  lifecycle {
    # The bootstrap model: after creation the model lifecycle owns serving (promotion copies
    # this model's container and the serving configuration's variants). Replacing it would
    # delete a model the endpoint may still serve and the next promotion reads, so no later
    # change replaces or updates it (serving settings apply when the endpoint is created).
    ignore_changes = all
  }

  depends_on = [aws_iam_role_policy.this]
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name        = "${var.endpoint_name}-${local.config_hash}"
  kms_key_arn = local.serverless ? null : var.kms_key_arn

  production_variants {
    variant_name           = "primary"
    model_name             = aws_sagemaker_model.this.name
    instance_type          = var.instance_type
    initial_instance_count = local.serverless ? null : var.initial_instance_count

    dynamic "serverless_config" {
      for_each = local.serverless ? [1] : []

      content {
        memory_size_in_mb = var.serverless_memory_mb
        max_concurrency   = var.serverless_max_concurrency
      }
    }
  }

  tags = var.tags

  lifecycle {
    # As the model: the bootstrap configuration may be what serves; never replaced later.
    ignore_changes = all
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = var.endpoint_name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = var.tags

  lifecycle {
    # Terraform deploys the bootstrap model; afterwards the model lifecycle (promote Lambda,
    # make rollback) owns which configuration serves. Without this, every apply would roll the
    # endpoint back to the bootstrap model.
    ignore_changes = [endpoint_config_name]
  }
}
