"""SageMaker patches: ``UpdateEndpoint``, and training jobs that the local runtime finishes.

* ``sagemaker_update_endpoint``: moto lacks ``UpdateEndpoint`` (HTTP 500); the patch re-points
  the endpoint to the new endpoint configuration and keeps it ``InService``.
* ``sagemaker_training_job_lifecycle``: moto reports a training job ``Completed`` at once with
  no artifact; the patch keeps it ``InProgress`` until the local runtime reports the outcome
  through a private route (``FINISH_TRAINING_JOB_PATH``: status, artifact,
  ``FinalMetricDataList``).
"""

from __future__ import annotations

import json
from typing import Any


def sagemaker_update_endpoint() -> None:
    """Implement ``UpdateEndpoint`` (moto answers HTTP 500 "not implemented").

    The endpoint keeps its name and ARN, takes the new configuration's name, production variants
    and data capture configuration, ``LastModifiedTime`` moves, and the status stays
    ``InService`` (a real update goes through ``Updating`` for minutes; the local SageMaker host
    switches model version on the next invocation). An unknown endpoint or configuration is a
    ``ValidationError`` like AWS.
    """
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        try:
            config = self.describe_endpoint_config(endpoint_config_name)
        except KeyError:
            arn = FakeEndpointConfig.arn_formatter(
                endpoint_config_name, self.account_id, self.region_name
            )
            raise ValidationError(message=f"Could not find endpoint_config '{arn}'.") from None
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.data_capture_config = config.get("DataCaptureConfig")
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = utcnow()
        return endpoint.arn

    def update_endpoint_action(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    update_endpoint.__stocksage_patch__ = True  # type: ignore[attr-defined]
    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_action  # type: ignore[attr-defined]


#: Training-job states a job may be finished into (``StocksageFinishTrainingJob``).
TRAINING_FINAL_STATES = ("Completed", "Failed", "Stopped")
#: Private emulator route (POST JSON) the local runtime calls to record a training job's outcome;
#: see ``stocksage.local.training.runner``. Under ``/moto-api/`` like moto's own control routes.
FINISH_TRAINING_JOB_PATH = "/moto-api/stocksage/finish-training-job"


def sagemaker_training_job_lifecycle() -> None:
    """Give training jobs a real lifecycle: ``InProgress`` until the local runtime finishes them.

    moto reports every job ``Completed`` the moment it is created, with no artifact, canned
    ``MetricDefinitions`` (``test:dcg``) and a canned ``FinalMetricDataList``, and silently
    replaces a job created twice under the same name. With this patch:

    * ``CreateTrainingJob`` stores the job ``InProgress`` (secondary status ``Starting``) with
      the metric definitions that were sent, no end time, no metrics and no ``ModelArtifacts``;
      a name that exists already is ``ResourceInUse`` (as on AWS: names are unique per account
      and region, which is what makes the retrain schedule idempotent);
    * a private route ``POST /moto-api/stocksage/finish-training-job`` (JSON body
      ``TrainingJobName``, ``TrainingJobStatus`` = Completed | Failed | Stopped, optional
      ``FailureReason``, ``S3ModelArtifacts``, ``FinalMetricDataList`` [{MetricName, Value}],
      ``BillableSeconds``, ``Region``, ``AccountId``) sets the outcome once: a job that is not
      ``InProgress`` is a 400 ``ValidationException``. (moto's SageMaker handler only accepts
      operations of botocore's service model, hence a route next to moto's own ``/moto-api``
      control routes rather than a custom SageMaker action.)
      The local runtime (``stocksage.local.training.runner``) runs the job with
      ``stocksage.local.training.run_training_job`` and reports through this action, so every
      reader (``DescribeTrainingJob``, ``ListTrainingJobs StatusEquals``) sees AWS's shape.
    """
    import copy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.moto_api._internal import urls as moto_api_urls
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend, sagemaker_backends

    original_init = FakeTrainingJob.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        spec = kwargs.get("algorithm_specification") or {}
        sent = copy.deepcopy(spec.get("MetricDefinitions") or [])
        original_init(self, *args, **kwargs)
        self.algorithm_specification["MetricDefinitions"] = sent
        self.training_job_status = "InProgress"
        self.secondary_status = "Starting"
        self.training_end_time = None
        self.final_metric_data_list = None
        self.model_artifacts = None
        self.failure_reason = None

    original_create = SageMakerModelBackend.create_training_job

    def create_training_job(self: Any, training_job_name: str, *args: Any, **kwargs: Any) -> Any:
        if training_job_name in self.training_jobs:
            raise ResourceInUseException(
                message=f"Training job names must be unique within an AWS account and region, "
                f"and a training job with this name already exists "
                f"({self.training_jobs[training_job_name].arn})"
            )
        return original_create(self, training_job_name, *args, **kwargs)

    def finish_training_job(self: Any, name: str, status: str, failure_reason: str | None,
                            artifact: str | None, metrics: list[dict[str, Any]] | None,
                            billable: int | None) -> dict[str, Any]:
        job = self.training_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find training job '{name}'.")
        if job.training_job_status not in ("InProgress", "Stopping"):
            raise ValidationError(
                message=f"Training job {name} is {job.training_job_status}, not InProgress.")
        if status not in TRAINING_FINAL_STATES:
            raise ValidationError(message=f"TrainingJobStatus must be one of "
                                          f"{TRAINING_FINAL_STATES}, not {status!r}.")
        now = utcnow()
        job.training_job_status = status
        job.secondary_status = status
        job.training_end_time = now
        job.last_modified_time = now
        job.failure_reason = failure_reason or None
        job.model_artifacts = {"S3ModelArtifacts": artifact} if artifact else None
        job.final_metric_data_list = [
            {"MetricName": m["MetricName"], "Value": float(m["Value"]), "Timestamp": now}
            for m in (metrics or [])
        ] or None
        if billable is not None:
            job.billable_time_in_seconds = int(billable)
        job.secondary_status_transitions.append(
            {"Status": status, "StartTime": job.training_start_time, "EndTime": now,
             "StatusMessage": failure_reason or f"Training job {status.lower()}"})
        return {"TrainingJobArn": job.arn, "TrainingJobStatus": status}

    # moto's route signature (it passes ``headers`` by keyword); only the request is read
    def stocksage_finish_training_job_route(
            request: Any, full_url: str, headers: Any) -> Any:  # noqa: ARG001
        try:
            body = json.loads(request.data or b"{}")
            backend = sagemaker_backends[body.get("AccountId") or DEFAULT_ACCOUNT_ID][
                body.get("Region") or "us-east-1"]
            result = finish_training_job(
                backend, body["TrainingJobName"], body["TrainingJobStatus"],
                body.get("FailureReason"), body.get("S3ModelArtifacts"),
                body.get("FinalMetricDataList"), body.get("BillableSeconds"))
        except (ValidationError, KeyError, ValueError) as err:
            message = getattr(err, "message", None) or str(err)
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"__type": "ValidationException", "message": message})
        return 200, {"Content-Type": "application/json"}, json.dumps(result)

    for fn in (__init__, create_training_job, finish_training_job,
               stocksage_finish_training_job_route):
        fn.__stocksage_patch__ = True  # type: ignore[union-attr]  # a marker on a function
    FakeTrainingJob.__init__ = __init__  # type: ignore[method-assign]
    SageMakerModelBackend.create_training_job = create_training_job  # type: ignore
    SageMakerModelBackend.stocksage_finish_training_job = finish_training_job  # type: ignore
    moto_api_urls.url_paths["{0}" + FINISH_TRAINING_JOB_PATH] = stocksage_finish_training_job_route

