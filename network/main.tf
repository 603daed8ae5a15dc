data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only a fallback when var.azs is null (local); dev and prod tfvars pin azs explicitly.
  state = "available"
}

# stack, project, is_local, tags: root_common.tf (shared with services/).
locals {
  name = "${local.project}-${var.environment}"
  azs  = coalesce(var.azs, slice(sort(data.aws_availability_zones.available.names), 0, 2))
}

module "kms" {
  source = "../modules/kms_key"

  alias_name              = "${local.name}-network"
  description             = "Network logs key of ${local.project} ${var.environment} (VPC flow logs)."
  deletion_window_in_days = var.kms_deletion_window_days
}

module "vpc" {
  source = "../modules/vpc"

  name                        = local.name
  cidr_block                  = var.cidr_block
  azs                         = local.azs
  nat_gateway_mode            = var.nat_gateway_mode
  enable_internet_gateway     = var.nat_gateway_mode != "none" || var.collector_subnet_tier == "public"
  interface_endpoint_services = var.interface_endpoint_services
  enable_flow_logs            = var.enable_flow_logs
  flow_logs_retention_days    = var.flow_logs_retention_days
  flow_logs_kms_key_arn       = module.kms.key_arn
}
