environment              = "dev"
aws_region               = "us-east-1"
cidr_block               = "10.40.0.0/16"
nat_gateway_mode         = "single"
enable_flow_logs         = true
flow_logs_retention_days = 14
kms_deletion_window_days = 7
# Kinesis/SageMaker/SNS/SQS traffic goes through the NAT in dev (cheaper than endpoints).
interface_endpoint_services = []
