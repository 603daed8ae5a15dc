output "name" {
  description = "Delivery stream name (also the role's name and the log group's suffix)."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "arn" {
  description = "Delivery stream ARN."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "role_arn" {
  description = "ARN of the delivery role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of delivery errors."
  value       = aws_cloudwatch_log_group.this.name
}
