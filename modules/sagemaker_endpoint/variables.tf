variable "endpoint_name" {
  description = "Endpoint name; the model and the endpoint configuration get it plus a content-hash suffix."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,53}$", var.endpoint_name))
    error_message = "endpoint_name must be 1-54 letters, digits and single hyphens (room for the config suffix)."
  }
}

variable "framework_repository" {
  description = "SageMaker prebuilt image repository (sagemaker-scikit-learn for the sklearn framework)."
  type        = string
  default     = "sagemaker-scikit-learn"
}

variable "framework_image_tag" {
  description = "Pinned tag of the framework image (e.g. 1.9-0-cpu-py3)."
  type        = string
  default     = "1.9-0-cpu-py3"

  validation {
    condition     = var.framework_image_tag != "latest" && length(var.framework_image_tag) > 0
    error_message = "Pin an explicit framework image tag (not latest)."
  }
}

variable "bucket_name" {
  description = "Bucket holding the model artifact and the inference source bundle."
  type        = string
}

variable "model_artifact_key" {
  description = "Key of model.tar.gz in the bucket."
  type        = string

  validation {
    condition     = endswith(var.model_artifact_key, ".tar.gz")
    error_message = "model_artifact_key must name a .tar.gz object."
  }
}

variable "source_dir_key" {
  description = "Key of the inference script bundle (sourcedir.tar.gz) in the bucket."
  type        = string
  default     = "code/sourcedir.tar.gz"

  validation {
    condition     = endswith(var.source_dir_key, ".tar.gz")
    error_message = "source_dir_key must name a .tar.gz object."
  }
}

variable "program" {
  description = "Entry script inside the source bundle (SAGEMAKER_PROGRAM)."
  type        = string
  default     = "inference.py"
}

variable "container_environment" {
  description = "Extra container environment (the SAGEMAKER_* script-mode variables are always set by the module)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key of the bucket (the role may Decrypt) and of instance storage for instance endpoints."
  type        = string
}

variable "instance_type" {
  description = "Instance type (e.g. ml.m5.large) for an instance-backed endpoint; null for Serverless Inference."
  type        = string
  default     = null

  validation {
    condition     = var.instance_type == null || can(regex("^ml\\.", var.instance_type))
    error_message = "instance_type must be null or an ml.* instance type."
  }
}

variable "initial_instance_count" {
  description = "Instances behind an instance-backed endpoint."
  type        = number
  default     = 1

  validation {
    condition     = var.initial_instance_count >= 1
    error_message = "initial_instance_count must be at least 1."
  }
}

variable "serverless_memory_mb" {
  description = "Serverless memory size: 1024-6144 MB in 1 GB steps."
  type        = number
  default     = 2048

  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.serverless_memory_mb)
    error_message = "serverless_memory_mb must be one of 1024, 2048, 3072, 4096, 5120, 6144."
  }
}

variable "serverless_max_concurrency" {
  description = "Serverless maximum concurrent invocations (1-200)."
  type        = number
  default     = 5

  validation {
    condition     = var.serverless_max_concurrency >= 1 && var.serverless_max_concurrency <= 200
    error_message = "serverless_max_concurrency must be between 1 and 200."
  }
}

variable "tags" {
  description = "Tags for every resource of the module."
  type        = map(string)
  default     = {}
}
