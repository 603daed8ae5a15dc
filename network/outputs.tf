# The services root reads collector_subnet_ids, collector_assign_public_ip and
# collector_security_group_id from this root's state (terraform_remote_state; scripts/tf.sh
# passes the state's location) and stops when they are missing.

output "vpc_id" {
  description = "VPC ID."
  value       = module.vpc.vpc_id
}

output "azs" {
  description = "Availability zones used."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "Public subnet IDs."
  value       = module.vpc.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Private subnet IDs."
  value       = module.vpc.private_subnet_ids
}

output "collector_subnet_ids" {
  description = "Subnets of the collector service (services reads them): private, or public when collector_subnet_tier = public."
  value       = var.collector_subnet_tier == "public" ? module.vpc.public_subnet_ids : module.vpc.private_subnet_ids
}

output "collector_assign_public_ip" {
  description = "Whether collector tasks get a public IPv4 (true only in public subnets; services reads it)."
  value       = var.collector_subnet_tier == "public"
}

output "collector_security_group_id" {
  description = "Egress-only (HTTPS) security group of the collector (services reads it)."
  value       = module.vpc.collector_security_group_id
}

output "endpoints_security_group_id" {
  description = "Security group of the interface endpoints, or null."
  value       = module.vpc.endpoints_security_group_id
}

output "nat_gateway_ids" {
  description = "NAT gateway IDs."
  value       = module.vpc.nat_gateway_ids
}

output "flow_log_group_name" {
  description = "Flow log group name, or null."
  value       = module.vpc.flow_log_group_name
}
