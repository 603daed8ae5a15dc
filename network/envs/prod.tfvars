environment              = "prod"
aws_region               = "us-east-1"
cidr_block               = "10.50.0.0/16"
nat_gateway_mode         = "per_az"
enable_flow_logs         = true
flow_logs_retention_days = 90
kms_deletion_window_days = 30
interface_endpoint_services = [
  "kinesis-streams",
  "logs",
  "sts",
  "kms",
  "ecr.api",
  "ecr.dkr",
]
