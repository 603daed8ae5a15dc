# Names, ARNs and URLs the scripts and the local runtime need. No secrets.

output "environment" {
  description = "Environment of this state."
  value       = var.environment
}

output "region" {
  description = "Region of the stack."
  value       = local.region
}

output "kms_key_arn" {
  description = "Data key ARN."
  value       = module.kms.key_arn
}

output "stream_name" {
  description = "Kinesis stream of bars."
  value       = aws_kinesis_stream.bars.name
}

output "stream_arn" {
  description = "Kinesis stream ARN."
  value       = aws_kinesis_stream.bars.arn
}

output "results_table" {
  description = "Results table name."
  value       = module.tables["results_table"].name
}

output "state_table" {
  description = "Window-state table name."
  value       = module.tables["state_table"].name
}

output "rules_table" {
  description = "Alert-rules table name."
  value       = module.tables["rules_table"].name
}

output "idempotency_table" {
  description = "Powertools idempotency table name."
  value       = module.tables["idempotency_table"].name
}

output "history_bucket" {
  description = "History bucket (bars/, model-artifacts/, code/)."
  value       = module.history_bucket.bucket
}

output "alerts_topic_arn" {
  description = "Alerts SNS topic ARN."
  value       = aws_sns_topic.alerts.arn
}

output "alerts_queue_url" {
  description = "Local alerts inbox queue URL (null outside local)."
  value       = var.create_local_alerts_queue ? module.alerts_inbox_queue[0].url : null
}

output "failure_queue_url" {
  description = "Processor failure queue URL (on-failure destination, quarantine)."
  value       = module.failures_queue.url
}

output "failure_queue_arn" {
  description = "Processor failure queue ARN."
  value       = module.failures_queue.arn
}

output "processor_function_name" {
  description = "Processor Lambda function name."
  value       = module.processor.function_name
}

output "processor_event_source_mapping_uuid" {
  description = "UUID of the Kinesis -> processor event source mapping."
  value       = module.processor.event_source_mapping_uuids["bars"]
}

output "endpoint_name" {
  description = "SageMaker endpoint name."
  value       = local.names.endpoint
}

output "model_artifact_uri" {
  description = "Where the endpoint's model.tar.gz must be."
  value       = "s3://${module.history_bucket.bucket}/${local.stack.model.artifact_key}"
}

output "ecs_cluster_name" {
  description = "ECS cluster of the collector."
  value       = module.collector.cluster_name
}

output "collector_task_definition_arn" {
  description = "Collector task definition ARN."
  value       = module.collector.task_definition_arn
}

output "collector_ecr_repository_url" {
  description = "ECR repository of the collector image (push here; tags are immutable)."
  value       = aws_ecr_repository.collector.repository_url
}

output "collector_secret_arn" {
  description = "Secrets Manager secret holding the market-data API key (JSON key_id, secret_key)."
  value       = aws_secretsmanager_secret.data_api.arn
}

output "collector_service_name" {
  description = "ECS service of the collector, or null when no subnets were given."
  value       = module.collector.service_name
}

output "processor_layer_arn" {
  description = "Dependency layer version published by this stack, or null."
  value       = one(aws_lambda_layer_version.dependencies[*].arn)
}

output "ops_topic_arn" {
  description = "SNS topic of the CloudWatch alarms."
  value       = aws_sns_topic.ops.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the stack."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "athena_workgroup" {
  description = "Athena workgroup (enable_quicksight), or null."
  value       = module.analytics.athena_workgroup_name
}
