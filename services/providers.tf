# One provider block for the cloud and the emulator. With aws_endpoint_url = null every endpoint
# below is null, which the provider treats as "not set" (default AWS endpoints); with the emulator
# URL every service used here is sent to it. Dummy credentials and skipped checks only when local.
provider "aws" {
  region = var.aws_region

  access_key                  = local.is_local ? "test" : null
  secret_key                  = local.is_local ? "test" : null
  skip_credentials_validation = local.is_local
  skip_metadata_api_check     = local.is_local
  skip_requesting_account_id  = local.is_local
  s3_use_path_style           = local.is_local

  endpoints {
    athena         = var.aws_endpoint_url
    cloudwatch     = var.aws_endpoint_url
    dynamodb       = var.aws_endpoint_url
    ec2            = var.aws_endpoint_url
    ecr            = var.aws_endpoint_url
    ecs            = var.aws_endpoint_url
    events         = var.aws_endpoint_url
    firehose       = var.aws_endpoint_url
    glue           = var.aws_endpoint_url
    iam            = var.aws_endpoint_url
    kinesis        = var.aws_endpoint_url
    kms            = var.aws_endpoint_url
    lambda         = var.aws_endpoint_url
    logs           = var.aws_endpoint_url
    quicksight     = var.aws_endpoint_url
    s3             = var.aws_endpoint_url
    sagemaker      = var.aws_endpoint_url
    scheduler      = var.aws_endpoint_url
    secretsmanager = var.aws_endpoint_url
    serverlessrepo = var.aws_endpoint_url
    sns            = var.aws_endpoint_url
    sqs            = var.aws_endpoint_url
    sts            = var.aws_endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}
