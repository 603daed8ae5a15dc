environment              = "dev"
aws_region               = "us-east-1"
azs                      = ["us-east-1a", "us-east-1b"]
cidr_block               = "10.40.0.0/16"
nat_gateway_mode         = "single"
enable_flow_logs         = true
flow_logs_retention_days = 14
kms_deletion_window_days = 7
# One NAT (~$33/month) instead of interface endpoints: the five the collector would need cost
# 5 x 2 AZ x $7.30 = $73/month, and the live market-data API needs internet egress anyway
# (docs/COST.md). nat_gateway_mode = "none" + collector_desired_count = 0 idles dev at $0 network.
interface_endpoint_services = []
