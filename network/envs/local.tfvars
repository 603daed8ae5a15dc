# Only for trying the network module on the emulator; the local services environment takes no subnets.
environment              = "local"
aws_region               = "us-east-1"
nat_gateway_mode         = "none"
enable_flow_logs         = true
flow_logs_retention_days = 7
kms_deletion_window_days = 7
