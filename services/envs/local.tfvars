# Local environment: the same root and modules, applied to the embedded emulator.
# aws_endpoint_url comes from AWS_ENDPOINT_URL via scripts/tf.sh (TF_VAR_aws_endpoint_url).
environment = "local"
aws_region  = "us-east-1"

kms_deletion_window_days  = 7
stream_mode               = "PROVISIONED"
stream_shard_count        = 1
history_force_destroy     = true
create_local_alerts_queue = true
log_retention_days        = 7
log_level                 = "DEBUG"

processor_layers = []

esm_batch_size                      = 100
esm_maximum_batching_window_seconds = 1
esm_parallelization_factor          = 1
esm_maximum_retry_attempts          = 3
esm_maximum_record_age_seconds      = 3600

endpoint_instance_type = null

collector_image  = "public.ecr.aws/docker/library/python:3.12.8-slim-bookworm"
collector_source = "replay"

# Model lifecycle (services/lifecycle.tf, services/firehose.tf): deliver history quickly locally.
history_buffer_seconds = 5
