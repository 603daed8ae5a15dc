environment              = "prod"
aws_region               = "us-east-1"
azs                      = ["us-east-1a", "us-east-1b"]
cidr_block               = "10.50.0.0/16"
nat_gateway_mode         = "per_az"
collector_subnet_tier    = "private"
enable_flow_logs         = true
flow_logs_retention_days = 90
kms_deletion_window_days = 30
# Everything the collector calls from the private subnets (ECR layers come through the S3
# gateway endpoint). sts/kms are not needed: task credentials come from the ECS agent and
# Kinesis/Secrets Manager use KMS server-side. The live market-data API still needs the NAT.
interface_endpoint_services = [
  "kinesis-streams",
  "ecr.api",
  "ecr.dkr",
  "logs",
  "secretsmanager",
]
