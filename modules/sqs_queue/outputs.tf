output "name" {
  description = "Queue name."
  value       = aws_sqs_queue.this.name
}

output "arn" {
  description = "Queue ARN."
  value       = aws_sqs_queue.this.arn
}

output "url" {
  description = "Queue URL."
  value       = aws_sqs_queue.this.url
}

output "policy_json" {
  description = "The queue policy document (attached only when it has statements)."
  value       = data.aws_iam_policy_document.this.json
}
