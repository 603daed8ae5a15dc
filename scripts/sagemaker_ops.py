r"""Operator tooling built on the ``sagemaker`` SDK (3.x): image URIs and training jobs by hand.

The SDK serves people, not Lambdas (the functions use boto3: the SDK installs ~1 GB). It lives
in its own virtual environment, created by ``make sagemaker-ops`` (``.venv-sagemaker``).

Commands::

    .venv-sagemaker/bin/python scripts/sagemaker_ops.py image-uri \
        [--region us-east-1] [--version 1.2-1]
    .venv-sagemaker/bin/python scripts/sagemaker_ops.py check-image [--region eu-west-1]
    .venv-sagemaker/bin/python scripts/sagemaker_ops.py describe-job NAME

``check-image`` compares the scikit-learn image that Terraform pins (``sklearn_image_tag`` in
``services/variables.tf``, resolved there by ``data "aws_sagemaker_prebuilt_ecr_image"``) with
what the SDK resolves for the same framework version and region: a tag the SDK does not know
fails before a deployment does. ``describe-job`` shows a training job's status, final metrics
and model artifact through ``sagemaker.core.resources.TrainingJob`` (honours
``AWS_ENDPOINT_URL``, so it also inspects the local stack's jobs). To launch a training job by
hand, invoke the retrain function (``aws lambda invoke --function-name stocksage-dev-retrain``)
or ``make retrain`` locally: one code path builds every job request.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

VARIABLES_TF = Path(__file__).resolve().parents[1] / "services" / "variables.tf"
FRAMEWORK = "sklearn"


def pinned_tag(path: Path = VARIABLES_TF) -> str:
    """Default of ``variable "sklearn_image_tag"`` in services/variables.tf, e.g. 1.9-0-cpu-py3."""
    match = re.search(r'variable\s+"sklearn_image_tag"\s*{[^}]*?default\s*=\s*"([^"]+)"',
                      path.read_text(), re.DOTALL)
    if not match:
        raise SystemExit(f"no default for sklearn_image_tag in {path}")
    return match.group(1)


def image_uri(region: str, version: str) -> str:
    """The SDK's image URI for the scikit-learn framework ``version`` in ``region``."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(FRAMEWORK, region=region, version=version)


def check_image(region: str) -> int:
    tag = pinned_tag()
    version = tag.split("-cpu")[0]
    resolved = image_uri(region, version)
    print(f"terraform pins  sagemaker-scikit-learn:{tag}")
    print(f"sdk resolves    {resolved}")
    if not resolved.endswith(f"/sagemaker-scikit-learn:{tag}"):
        print("MISMATCH: update sklearn_image_tag or the framework version", file=sys.stderr)
        return 1
    print("ok: the pinned image is the SDK's image for this framework version")
    return 0


def describe_job(name: str) -> int:
    from sagemaker.core.resources import TrainingJob

    job = TrainingJob.get(training_job_name=name)
    print(f"{job.training_job_name}: {job.training_job_status}"
          + (f" ({job.failure_reason})" if getattr(job, "failure_reason", None) else ""))
    artifacts = getattr(job, "model_artifacts", None)
    if artifacts is not None:
        print(f"model artifact: {artifacts.s3_model_artifacts}")
    for metric in getattr(job, "final_metric_data_list", None) or []:
        print(f"  {metric.metric_name:40} {metric.value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    uri = sub.add_parser("image-uri", help="resolve the scikit-learn image URI")
    uri.add_argument("--region", default="us-east-1")
    uri.add_argument("--version", default=None, help="framework version (default: Terraform's)")
    check = sub.add_parser("check-image", help="Terraform's pinned image == the SDK's")
    check.add_argument("--region", default="us-east-1")
    job = sub.add_parser("describe-job", help="status, metrics and artifact of a training job")
    job.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "image-uri":
        print(image_uri(args.region, args.version or pinned_tag().split("-cpu")[0]))
        return 0
    if args.command == "check-image":
        return check_image(args.region)
    return describe_job(args.name)


if __name__ == "__main__":
    raise SystemExit(main())
