environment = "dev"
aws_region  = "us-east-1"

kms_deletion_window_days  = 7
stream_mode               = "ON_DEMAND"
history_force_destroy     = true
create_local_alerts_queue = false
log_retention_days        = 14
log_level                 = "INFO"

# Dependency layer ARN(s) (numpy, pandas, ta, Powertools) for the processor.
processor_layers = []

esm_batch_size                      = 200
esm_maximum_batching_window_seconds = 5
esm_parallelization_factor          = 1
esm_maximum_retry_attempts          = 3
esm_maximum_record_age_seconds      = 21600

# Serverless Inference.
endpoint_instance_type = null

# private_subnet_ids / collector_security_group_ids come from the network root (scripts/tf.sh).
collector_image = "public.ecr.aws/docker/library/python:3.12-slim"
