environment              = "dev"
aws_region               = "us-east-1"
azs                      = ["us-east-1a", "us-east-1b"]
cidr_block               = "10.40.0.0/16"
nat_gateway_mode         = "none"
enable_flow_logs         = true
flow_logs_retention_days = 14
kms_deletion_window_days = 7
# No NAT gateway ($36.50/month idle): the dev collector runs in a public subnet with a public
# IPv4 ($3.65/month) behind an egress-only security group (TCP 443 out, nothing in). prod keeps
# private subnets behind per-AZ NAT. Trade-off: docs/COST.md.
collector_subnet_tier       = "public"
interface_endpoint_services = []
