################################################################################
# Dependency layer of the processor (numpy, pandas, ta, Powertools), self-built by
# `scripts/package_lambda.py --layer` (make package; scripts/tf.sh for dev/prod). Uploaded
# through the history bucket: at ~25 MB zipped it is near the 50 MB direct-upload limit of
# PublishLayerVersion and S3 keeps it versioned. Size decision: docs/PACKAGING.md.
# Local: no layer (the local runtime runs the handler in-process with the venv's packages).
################################################################################

variable "processor_layer_zip" {
  description = "Path of the dependency layer zip built by scripts/package_lambda.py --layer; null: no layer is published (local, or layers given in processor_layers)."
  type        = string
  default     = null

  validation {
    condition     = var.processor_layer_zip == null || endswith(coalesce(var.processor_layer_zip, "x.zip"), ".zip")
    error_message = "processor_layer_zip must be null or a .zip path."
  }
}

locals {
  layer_hash = var.processor_layer_zip == null ? null : filebase64sha256(var.processor_layer_zip)
}

resource "aws_s3_object" "processor_layer" {
  count = var.processor_layer_zip == null ? 0 : 1

  bucket      = module.history_bucket.bucket
  key         = "artifacts/lambda/${local.names.processor_function}-deps-${substr(sha256(local.layer_hash), 0, 16)}.zip"
  source      = var.processor_layer_zip
  source_hash = local.layer_hash
  kms_key_id  = module.kms.key_arn
}

resource "aws_lambda_layer_version" "dependencies" {
  count = var.processor_layer_zip == null ? 0 : 1

  layer_name               = "${local.names.processor_function}-deps"
  description              = "numpy, pandas, ta, Powertools for python3.12 x86_64 (requirements/processor-layer.txt)"
  s3_bucket                = aws_s3_object.processor_layer[0].bucket
  s3_key                   = aws_s3_object.processor_layer[0].key
  source_code_hash         = local.layer_hash
  compatible_runtimes      = ["python3.12"]
  compatible_architectures = ["x86_64"]
}
