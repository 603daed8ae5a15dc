# `terraform test` (offline: a mock AWS provider): on a fresh AWS account the apply refuses to
# create the endpoint before its model artifact exists, and says what to do next.
# Run by tests/unit/terraform/test_terraform_static.py (test_services_terraform_tests): after
# `scripts/tf.sh services local validate`, `terraform test -var-file=envs/dev.tfvars
# -var processor_zip=<a .zip>` in services/ with that data directory.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1", region = "us-east-1" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000", key_id = "00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::stocksage-dev-history-mock" }
  }
  mock_resource "aws_kinesis_stream" {
    defaults = { arn = "arn:aws:kinesis:us-east-1:123456789012:stream/stocksage-dev-bars" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:us-east-1:123456789012:stocksage-dev-topic" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-1:123456789012:stocksage-dev-queue", url = "https://sqs.us-east-1.amazonaws.com/123456789012/stocksage-dev-queue" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/stocksage-dev-mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:stocksage-dev-mock", invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:stocksage-dev-mock/invocations", qualified_arn = "arn:aws:lambda:us-east-1:123456789012:function:stocksage-dev-mock:1" }
  }
  mock_resource "aws_lambda_layer_version" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:layer:stocksage-dev-deps:1" }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = { arn = "arn:aws:dynamodb:us-east-1:123456789012:table/stocksage-dev-mock", stream_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/stocksage-dev-mock/stream/2026-01-01T00:00:00.000" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:stocksage-dev-mock-AbCdEf" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:/stocksage/mock" }
  }
  mock_resource "aws_ecr_repository" {
    defaults = { arn = "arn:aws:ecr:us-east-1:123456789012:repository/stocksage-dev-collector", repository_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stocksage-dev-collector" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:us-east-1:123456789012:cluster/stocksage-dev" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:us-east-1:123456789012:rule/stocksage-dev-mock" }
  }
  mock_resource "aws_sagemaker_model" {
    defaults = { arn = "arn:aws:sagemaker:us-east-1:123456789012:model/stocksage-dev-mock" }
  }
  mock_resource "aws_sagemaker_endpoint_configuration" {
    defaults = { arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/stocksage-dev-mock" }
  }
  mock_resource "aws_sagemaker_endpoint" {
    defaults = { arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/stocksage-dev-predictor" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/stocksage-dev-history" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

# processor_zip comes from the command line (any existing .zip: nothing is uploaded).
variables {
  network_state = { bucket = "stocksage-dev-tfstate", key = "network/dev.tfstate", region = "us-east-1" }
}

override_data {
  target = data.terraform_remote_state.network[0]
  values = {
    outputs = {
      collector_subnet_ids        = ["subnet-0123456789abcdef0"]
      collector_security_group_id = "sg-0123456789abcdef0"
      collector_assign_public_ip  = true
    }
  }
}

run "an_apply_without_the_first_model_stops_before_the_endpoint" {
  # apply: on a fresh account the check is read during the apply, after the bucket exists
  command = apply

  override_data {
    target = data.aws_s3_objects.model_artifact[0]
    values = { keys = [] }
  }

  expect_failures = [data.aws_s3_objects.model_artifact[0]]
}

run "with_the_first_model_uploaded_the_endpoint_is_created" {
  command = apply

  override_data {
    target = data.aws_s3_objects.model_artifact[0]
    values = { keys = ["model-artifacts/initial/model.tar.gz"] }
  }

  assert {
    condition     = length(data.aws_s3_objects.model_artifact) == 1 && length(module.endpoint) == 1
    error_message = "the endpoint is created once the artifact check passed"
  }
}

run "the_check_can_be_switched_off_for_a_removed_bootstrap_artifact" {
  command = plan

  variables {
    check_model_artifact = false
  }

  assert {
    condition     = length(data.aws_s3_objects.model_artifact) == 0 && length(module.endpoint) == 1
    error_message = "without the check nothing is read and the endpoint is still planned"
  }
}
