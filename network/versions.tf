terraform {
  # 1.10+: S3 backend native locking (use_lockfile); 1.9+: cross-variable validation.
  required_version = ">= 1.10.0"

  # One backend type for every environment; the settings come from envs/<env>.s3.tfbackend
  # (scripts/tf.sh). The local environment keeps its state in a bucket on the emulator itself.
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
