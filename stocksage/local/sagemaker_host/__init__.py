"""The SageMaker endpoint host: runs the deployed models behind the SageMaker runtime API.

moto's ``invoke_endpoint`` returns canned bytes. This host serves, on 127.0.0.1:4567:

* ``POST /endpoints/{EndpointName}/invocations`` - the SageMaker runtime API path that boto3
  ``sagemaker-runtime.invoke_endpoint`` calls when ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or
  ``endpoint_url``) points here;
* ``GET /ping`` and ``POST /invocations`` - the inference container contract (the default
  endpoint: ``default_endpoint``, else the only endpoint in the emulator).

Per invocation the host calls ``DescribeEndpoint`` once; everything behind the endpoint
configuration is cached by configuration name (re-checked every ``revalidate_s`` seconds, so a
configuration deleted and recreated under the same name is noticed): production variant ->
``DescribeModel`` ->
``PrimaryContainer.ModelDataUrl`` (``model.tar.gz``) and ``Environment``
(``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY`` = ``s3://.../sourcedir.tar.gz`` or a local
folder). Both archives are downloaded from the emulator's S3 and extracted under
``cache_dir/<model>-<etag>/{model,code}``; the program is imported in isolation
(``importlib`` from its file, a unique module name per model version, its folder on
``sys.path`` while it is imported) and ``model_fn(model_dir)`` runs once per model version.
Requests then go through ``input_fn(body, content_type)``, ``predict_fn(data, model)``,
``output_fn(prediction, accept)`` - or ``transform_fn(model, body, content_type, accept)`` when
the program defines it - with the SageMaker scikit-learn container's defaults for a missing
handler (JSON/CSV/NPY input, ``model.predict``, JSON/CSV/NPY output). ``output_fn`` may return
the body or ``(body, content_type)``.

The package, one concern per module:

* ``server``: the HTTP host (``SageMakerHost``, ``ping``), its routes and stats;
* ``models``: endpoint -> configuration -> variant -> model version, downloaded and imported
  (``ModelStore``);
* ``container``: the inference container contract and its default handlers (``LoadedModel``);
* ``outages``: injected endpoint outages (``OutageSwitch``);
* ``errors``: AWS-shaped errors (``HostError``).

Usage::

    with SageMakerHost(client_kwargs, port=0) as host:     # serves in a background thread
        boto3.client("sagemaker-runtime", endpoint_url=host.url).invoke_endpoint(...)

When the endpoint is updated to a new configuration (``UpdateEndpoint``, patched into the
emulator by ``stocksage.local.emulator``) the next invocation uses the new model version.

Errors, shaped so that boto3 raises ``ClientError`` with the AWS code:

* unknown endpoint -> 400 ``ValidationError`` "Endpoint X of account Y not found.";
* no model/program, download or load failure, or an exception in a handler -> 424
  ``ModelError`` with ``OriginalStatusCode`` (500, or 415 for an unsupported content type),
  ``OriginalMessage`` and ``LogStreamArn``.

Outages (resilience tests; client: ``stocksage.local.fault_injection.endpoint_outage``):
``POST /_stocksage/outage`` with ``{"seconds": 90, "mode": "fail"|"model_error"|"hang",
"endpoint": null}`` (null = every endpoint) makes invocations, for that long, fail with 503
``ServiceUnavailable`` (boto3 retries it), fail with 424 ``ModelError`` (not retried), or hang
until the outage ends (a client read timeout fires first when shorter) and then be served;
``DELETE /_stocksage/outage`` ends it (``SageMakerHost.outage`` / ``end_outage`` in process).

Variants: ``TargetVariant`` (``X-Amzn-SageMaker-Target-Variant``) picks a variant; otherwise the
variant is drawn by ``InitialVariantWeight`` like AWS. The response carries
``x-Amzn-Invoked-Production-Variant``.
"""

from stocksage.local.sagemaker_host.container import (
    LoadedModel,
    default_input_fn,
    default_model_fn,
    default_output_fn,
    default_predict_fn,
)
from stocksage.local.sagemaker_host.errors import HostError, UnsupportedContentType
from stocksage.local.sagemaker_host.models import EndpointConfigEntry, ModelStore, Variant
from stocksage.local.sagemaker_host.outages import OUTAGE_MODES, Outage, OutageSwitch
from stocksage.local.sagemaker_host.server import DEFAULT_PORT, HostStats, SageMakerHost, ping

__all__ = [
    "DEFAULT_PORT",
    "OUTAGE_MODES",
    "EndpointConfigEntry",
    "HostError",
    "HostStats",
    "LoadedModel",
    "ModelStore",
    "Outage",
    "OutageSwitch",
    "SageMakerHost",
    "UnsupportedContentType",
    "Variant",
    "default_input_fn",
    "default_model_fn",
    "default_output_fn",
    "default_predict_fn",
    "ping",
]
