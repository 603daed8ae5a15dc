################################################################################
# State moves of the module refactoring (issue 19): resources that were written out in this
# root now live in modules; these blocks move existing state so nothing is replaced. Keep them
# until every environment's state has been applied once after the move.
################################################################################

# --- SQS queues -> modules/sqs_queue ---------------------------------------------------------

moved {
  from = aws_sqs_queue.alerts_inbox[0]
  to   = module.alerts_inbox_queue[0].aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue_policy.alerts_inbox[0]
  to   = module.alerts_inbox_queue[0].aws_sqs_queue_policy.this[0]
}

moved {
  from = aws_sqs_queue.failures
  to   = module.failures_queue.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue_policy.failures[0]
  to   = module.failures_queue.aws_sqs_queue_policy.this[0]
}

moved {
  from = aws_sqs_queue.lifecycle_failures
  to   = module.lifecycle_failures_queue.aws_sqs_queue.this
}

moved {
  from = aws_sqs_queue_policy.lifecycle_failures
  to   = module.lifecycle_failures_queue.aws_sqs_queue_policy.this[0]
}

# --- Firehose history delivery -> modules/firehose_s3 ---------------------------------------

moved {
  from = aws_iam_role.history_delivery
  to   = module.history_delivery.aws_iam_role.this
}

moved {
  from = aws_cloudwatch_log_group.history_delivery
  to   = module.history_delivery.aws_cloudwatch_log_group.this
}

moved {
  from = aws_cloudwatch_log_stream.history_delivery
  to   = module.history_delivery.aws_cloudwatch_log_stream.this
}

moved {
  from = aws_iam_role_policy.history_delivery
  to   = module.history_delivery.aws_iam_role_policy.this
}

moved {
  from = aws_kinesis_firehose_delivery_stream.history
  to   = module.history_delivery.aws_kinesis_firehose_delivery_stream.this
}

# --- Analytics layer -> modules/analytics (create = var.enable_quicksight) ---------------------
# Same names inside the module and the same count ([0] when enabled), so each resource moves as
# a whole (every instance keeps its index); the data sets keep their for_each keys.

moved {
  from = module.athena_bucket
  to   = module.analytics.module.athena_bucket
}

moved {
  from = aws_athena_workgroup.analytics
  to   = module.analytics.aws_athena_workgroup.analytics
}

moved {
  from = aws_glue_catalog_database.history
  to   = module.analytics.aws_glue_catalog_database.history
}

moved {
  from = aws_glue_catalog_table.bars
  to   = module.analytics.aws_glue_catalog_table.bars
}

moved {
  from = aws_glue_catalog_database.results
  to   = module.analytics.aws_glue_catalog_database.results
}

moved {
  from = aws_glue_catalog_table.results
  to   = module.analytics.aws_glue_catalog_table.results
}

moved {
  from = aws_iam_role.connector
  to   = module.analytics.aws_iam_role.connector
}

moved {
  from = aws_iam_role_policy.connector
  to   = module.analytics.aws_iam_role_policy.connector
}

moved {
  from = aws_serverlessapplicationrepository_cloudformation_stack.dynamodb_connector
  to   = module.analytics.aws_serverlessapplicationrepository_cloudformation_stack.dynamodb_connector
}

moved {
  from = aws_athena_data_catalog.dynamodb
  to   = module.analytics.aws_athena_data_catalog.dynamodb
}

moved {
  from = aws_iam_role.alerts_archive_subscription
  to   = module.analytics.aws_iam_role.alerts_archive_subscription
}

moved {
  from = aws_iam_role_policy.alerts_archive_subscription
  to   = module.analytics.aws_iam_role_policy.alerts_archive_subscription
}

moved {
  from = aws_sns_topic_subscription.alerts_archive
  to   = module.analytics.aws_sns_topic_subscription.alerts_archive
}

moved {
  from = aws_glue_catalog_table.alerts
  to   = module.analytics.aws_glue_catalog_table.alerts
}

moved {
  from = aws_quicksight_data_source.athena
  to   = module.analytics.aws_quicksight_data_source.athena
}

moved {
  from = aws_quicksight_data_set.query
  to   = module.analytics.aws_quicksight_data_set.query
}

moved {
  from = aws_quicksight_data_set.bars
  to   = module.analytics.aws_quicksight_data_set.bars
}

moved {
  from = aws_quicksight_dashboard.analytics
  to   = module.analytics.aws_quicksight_dashboard.analytics
}

# The alerts archive delivery (count = enable_quicksight) -> modules/firehose_s3 inside it.

moved {
  from = aws_iam_role.alerts_archive[0]
  to   = module.analytics.module.alerts_archive[0].aws_iam_role.this
}

moved {
  from = aws_cloudwatch_log_group.alerts_archive[0]
  to   = module.analytics.module.alerts_archive[0].aws_cloudwatch_log_group.this
}

moved {
  from = aws_cloudwatch_log_stream.alerts_archive[0]
  to   = module.analytics.module.alerts_archive[0].aws_cloudwatch_log_stream.this
}

moved {
  from = aws_iam_role_policy.alerts_archive[0]
  to   = module.analytics.module.alerts_archive[0].aws_iam_role_policy.this
}

moved {
  from = aws_kinesis_firehose_delivery_stream.alerts_archive[0]
  to   = module.analytics.module.alerts_archive[0].aws_kinesis_firehose_delivery_stream.this
}
