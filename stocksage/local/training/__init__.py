"""Local SageMaker training jobs (script mode), following the platform's contract.

moto records ``CreateTrainingJob`` but runs nothing and writes no artifact. This package runs
such a job for real on this machine from its ``describe_training_job`` description::

    desc = sm.describe_training_job(TrainingJobName=name)
    result = run_training_job(s3, desc)
    result.status, result.model_artifact, result.final_metrics

The package, one concern per module:

* ``executor``: ``run_training_job``: the ``/opt/ml`` tree, channels, the program with the
  training toolkit's environment, metrics, artifacts (the contract, step by step, is there);
* ``jobs``: the project's job request (``script_mode_job``) and the bootstrap model
  (``train_initial_model``);
* ``result``: ``TrainingResult`` and ``TrainingJobError``;
* ``s3io``: S3 transfers (channels, source bundle, artifacts).

The local runtime runs the jobs created in the emulator with it
(``stocksage.local.training.runner``).
"""

from stocksage.local.training.executor import (
    CURRENT_HOST,
    DEFAULT_IMAGE,
    DEFAULT_TIMEOUT_S,
    decode_hyperparameter,
    run_training_job,
)
from stocksage.local.training.jobs import script_mode_job, train_initial_model
from stocksage.local.training.result import LOG_TAIL_CHARS, TrainingJobError, TrainingResult
from stocksage.local.training.s3io import download_prefix, parse_s3_uri

__all__ = [
    "CURRENT_HOST",
    "DEFAULT_IMAGE",
    "DEFAULT_TIMEOUT_S",
    "LOG_TAIL_CHARS",
    "TrainingJobError",
    "TrainingResult",
    "decode_hyperparameter",
    "download_prefix",
    "parse_s3_uri",
    "run_training_job",
    "script_mode_job",
    "train_initial_model",
]
