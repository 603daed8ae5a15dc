output "endpoint_name" {
  description = "Endpoint name."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "Endpoint ARN (resource of sagemaker:InvokeEndpoint)."
  value       = aws_sagemaker_endpoint.this.arn
}

output "endpoint_config_name" {
  description = "Current endpoint configuration name."
  value       = aws_sagemaker_endpoint_configuration.this.name
}

output "model_name" {
  description = "Model name."
  value       = aws_sagemaker_model.this.name
}

output "image_uri" {
  description = "Framework image the model runs."
  value       = data.aws_sagemaker_prebuilt_ecr_image.this.registry_path
}

output "execution_role_arn" {
  description = "Execution role of the model."
  value       = aws_iam_role.this.arn
}
