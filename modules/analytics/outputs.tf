output "athena_workgroup_name" {
  description = "Athena workgroup, or null when create is false."
  value       = one(aws_athena_workgroup.analytics[*].name)
}

output "athena_bucket_name" {
  description = "Bucket of Athena results and connector spill, or null."
  value       = one(module.athena_bucket[*].bucket)
}

output "data_catalog_name" {
  description = "Athena data catalog of the DynamoDB connector, or null."
  value       = one(aws_athena_data_catalog.dynamodb[*].name)
}

output "alerts_archive_stream_name" {
  description = "Firehose delivery stream of the alerts archive, or null."
  value       = one(module.alerts_archive[*].name)
}

output "data_set_ids" {
  description = "QuickSight data set ids by query name (plus bars), empty when create is false."
  value       = merge({ for k, ds in aws_quicksight_data_set.query : k => ds.data_set_id }, { for ds in aws_quicksight_data_set.bars : "bars" => ds.data_set_id })
}

output "dashboard_url" {
  description = "URL of the QuickSight dashboard, or null when create is false."
  value       = var.create ? "https://${local.region}.quicksight.aws.amazon.com/sn/dashboards/${local.dashboard_id}" : null
}
