environment = "prod"
aws_region  = "us-east-1"

kms_deletion_window_days  = 30
stream_mode               = "PROVISIONED"
stream_shard_count        = 2
stream_retention_hours    = 168
deletion_protection       = true
history_force_destroy     = false
create_local_alerts_queue = false
log_retention_days        = 90
log_level                 = "INFO"
processor_tracing_mode    = "Active"

# The dependency layer is built and published by the stack (processor_layer_zip, scripts/tf.sh);
# extra layer ARNs go here.
processor_layers = []

esm_batch_size                      = 500
esm_maximum_batching_window_seconds = 5
esm_parallelization_factor          = 2
esm_maximum_retry_attempts          = 3
esm_maximum_record_age_seconds      = 86400

endpoint_instance_type          = "ml.m5.large"
endpoint_initial_instance_count = 1

# private_subnet_ids / collector_security_group_ids come from the network root (scripts/tf.sh).
collector_image     = "public.ecr.aws/docker/library/python:3.12.8-slim-bookworm"
collector_image_tag = "0.1.0"
collector_source    = "live"
# On-demand Fargate for the one collector task (no Spot interruptions in prod).
collector_capacity_provider_strategy = [{ capacity_provider = "FARGATE", weight = 1, base = 1 }]

ops_email_subscriptions = []
enable_quicksight       = false # true + quicksight_principal_arn once QuickSight is subscribed
