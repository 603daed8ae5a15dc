environment = "dev"
aws_region  = "us-east-1"

kms_deletion_window_days = 7
# PROVISIONED, 1 shard: $0.015/shard-hour ($11/month) vs $0.04/stream-hour ($29/month) on demand;
# one shard takes 1,000 bars/s, far above dev traffic (docs/COST.md).
stream_mode               = "PROVISIONED"
stream_shard_count        = 1
history_force_destroy     = true
create_local_alerts_queue = false
log_retention_days        = 14
log_level                 = "INFO"

# The dependency layer is built and published by the stack (processor_layer_zip, scripts/tf.sh);
# extra layer ARNs go here.
processor_layers = []

esm_batch_size                      = 200
esm_maximum_batching_window_seconds = 5
esm_parallelization_factor          = 1
esm_maximum_retry_attempts          = 3
esm_maximum_record_age_seconds      = 21600

# Serverless Inference.
endpoint_instance_type = null

# private_subnet_ids / collector_security_group_ids come from the network root (scripts/tf.sh).
# The image is this stack's ECR repository at collector_image_tag (README "Deploy to AWS");
# collector_image is only the fallback when no tag is set.
collector_image     = "public.ecr.aws/docker/library/python:3.12.8-slim-bookworm"
collector_image_tag = "0.1.0"
collector_source    = "live"
# Idle-cheap dev: the collector runs on Fargate Spot (~70% cheaper, may be interrupted; on
# restart the live source re-reads a lookback window and the processor drops duplicates).
collector_capacity_provider_strategy = [{ capacity_provider = "FARGATE_SPOT", weight = 1 }]

ops_email_subscriptions = []
enable_quicksight       = false
