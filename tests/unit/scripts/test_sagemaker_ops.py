"""scripts/sagemaker_ops.py: the SDK-based operator checks of the pinned SageMaker image."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import sagemaker_ops

ROOT = Path(__file__).resolve().parents[3]
OPS_PYTHON = ROOT / ".venv-sagemaker" / "bin" / "python"


def test_pinned_tag_is_the_one_terraform_uses_for_training_and_serving():
    tag = sagemaker_ops.pinned_tag()
    assert re.fullmatch(r"\d+\.\d+-\d+-cpu-py3", tag)
    main_tf = (ROOT / "services" / "main.tf").read_text()
    lifecycle_tf = (ROOT / "services" / "lifecycle.tf").read_text()
    assert "framework_image_tag        = var.sklearn_image_tag" in main_tf
    assert "image_tag       = var.sklearn_image_tag" in lifecycle_tf


@pytest.mark.skipif(not OPS_PYTHON.exists(),
                    reason="the sagemaker SDK venv is optional tooling: `make sagemaker-ops`")
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_sdk_resolves_the_pinned_image(region):
    proc = subprocess.run([str(OPS_PYTHON), str(ROOT / "scripts" / "sagemaker_ops.py"),
                           "check-image", "--region", region],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f".dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:" in proc.stdout
