# The services root takes private_subnet_ids and collector_security_group_id as variables
# (private_subnet_ids, collector_security_group_ids); scripts/tf.sh passes them for dev/prod.

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
  description = "Private subnet IDs (services: private_subnet_ids)."
  value       = module.vpc.private_subnet_ids
}

output "collector_security_group_id" {
  description = "Egress-only security group of the collector (services: collector_security_group_ids)."
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
