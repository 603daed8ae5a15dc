output "vpc_id" {
  description = "VPC ID."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "VPC CIDR."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnet IDs, in AZ order."
  value       = [for az in var.azs : aws_subnet.public[az].id]
}

output "private_subnet_ids" {
  description = "Private subnet IDs, in AZ order."
  value       = [for az in var.azs : aws_subnet.private[az].id]
}

output "private_route_table_ids" {
  description = "Private route table IDs, in AZ order."
  value       = [for az in var.azs : aws_route_table.private[az].id]
}

output "collector_security_group_id" {
  description = "Security group of the collector tasks (egress only)."
  value       = aws_security_group.collector.id
}

output "endpoints_security_group_id" {
  description = "Security group of the interface endpoints, or null."
  value       = length(aws_security_group.endpoints) > 0 ? aws_security_group.endpoints[0].id : null
}

output "nat_gateway_ids" {
  description = "NAT gateway IDs (empty with nat_gateway_mode = none)."
  value       = [for k, n in aws_nat_gateway.this : n.id]
}

output "flow_log_group_name" {
  description = "Flow log group, or null."
  value       = var.enable_flow_logs ? aws_cloudwatch_log_group.flow_logs[0].name : null
}
