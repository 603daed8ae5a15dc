variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "name" {
  description = "Task family and service name (also prefixes the IAM roles and the /ecs/<name> log group)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,55}$", var.name))
    error_message = "name must be 1-55 letters, digits, '-' or '_' (room for the role suffixes)."
  }
}

variable "container_name" {
  description = "Name of the container inside the task."
  type        = string
  default     = "app"
}

variable "image" {
  description = "Container image URI (pin a tag or digest)."
  type        = string

  validation {
    condition     = length(var.image) > 0 && !endswith(var.image, ":latest")
    error_message = "image must be set and must not use the :latest tag."
  }
}

variable "command" {
  description = "Command override for the container, or null for the image's default."
  type        = list(string)
  default     = null
}

variable "environment" {
  description = "Container environment (no secrets)."
  type        = map(string)
  default     = {}
}

variable "cpu" {
  description = "Fargate task CPU units (256, 512, 1024, 2048, 4096)."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB (must be a valid pairing with cpu)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory >= 512 && var.memory <= 30720
    error_message = "memory must be between 512 and 30720 MiB."
  }
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "container_insights" {
  description = "Enable CloudWatch Container Insights on the cluster."
  type        = bool
  default     = true
}

variable "task_policy_statements" {
  description = "Least-privilege statements of the task role, keyed by Sid: exact actions on exact resources, optionally narrowed by conditions (e.g. s3:prefix of an s3:ListBucket)."
  type = map(object({
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default = {}

  validation {
    condition     = alltrue([for k, v in var.task_policy_statements : can(regex("^[A-Za-z0-9]+$", k))])
    error_message = "Keys must be alphanumeric Sids."
  }
}

variable "ecr_repository_arns" {
  description = "Private ECR repositories the execution role may pull from (empty for public images)."
  type        = list(string)
  default     = []
}

variable "subnet_ids" {
  description = "Subnets of the service (private; public only with assign_public_ip). Empty: only the cluster and the task definition are created (no service), as in the local environment."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give each task a public IPv4 address: only for tasks in public subnets without a NAT gateway (pair it with an egress-only security group). Private subnets: false."
  type        = bool
  default     = false
}

variable "security_group_ids" {
  description = "Security groups of the service's tasks (required when subnet_ids is not empty)."
  type        = list(string)
  default     = []
}

variable "desired_count" {
  description = "Tasks to keep running when the service exists."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= 0
    error_message = "desired_count must not be negative."
  }
}

variable "log_retention_days" {
  description = "Retention of the task log group in days."
  type        = number
  default     = 30
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log group (null for the default encryption)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}

variable "capacity_provider_strategy" {
  description = "Capacity provider strategy of the cluster (default) and the service: FARGATE and/or FARGATE_SPOT with weight and base."
  type = list(object({
    capacity_provider = string
    weight            = number
    base              = optional(number, 0)
  }))
  default = [{ capacity_provider = "FARGATE", weight = 1, base = 0 }]

  validation {
    condition     = length(var.capacity_provider_strategy) > 0 && alltrue([for s in var.capacity_provider_strategy : contains(["FARGATE", "FARGATE_SPOT"], s.capacity_provider) && s.weight >= 0 && s.base >= 0])
    error_message = "Each strategy item needs capacity_provider FARGATE or FARGATE_SPOT, weight >= 0, base >= 0."
  }
}

variable "secrets" {
  description = "Container environment variables whose values ECS reads from Secrets Manager at task start: NAME => valueFrom (secret ARN, optionally with :json-key:: suffix)."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Secret ARNs the execution role may read (the secrets' valueFrom without JSON-key suffixes)."
  type        = list(string)
  default     = []
}

variable "secrets_kms_key_arn" {
  description = "KMS key encrypting the secrets (execution role gets kms:Decrypt), or null for the AWS managed key."
  type        = string
  default     = null
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL when a task stops (Fargate: 2-120). The app must flush within it."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "stop_timeout must be between 2 and 120 seconds (Fargate maximum)."
  }
}

variable "health_check_command" {
  description = "Container health check command (e.g. [\"CMD\", \"python\", \"-m\", \"app\", \"health\"]), or null for none."
  type        = list(string)
  default     = null
}

variable "writable_paths" {
  description = "Paths inside the container backed by task-local scratch volumes (the root filesystem is read-only), e.g. [\"/tmp\"]."
  type        = list(string)
  default     = []
}

variable "user" {
  description = "User (uid:gid) the container runs as; null keeps the image's USER."
  type        = string
  default     = null
}
