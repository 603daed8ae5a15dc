"""Endpoint configurations and model versions, resolved and loaded from the emulator.

``ModelStore`` follows an endpoint to the code and model it serves, the way SageMaker hosting
does: ``DescribeEndpoint`` -> endpoint configuration (production variants, cached by
configuration name) -> ``DescribeModel`` -> ``PrimaryContainer.ModelDataUrl``
(``model.tar.gz``) and ``Environment`` (``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY`` =
``s3://.../sourcedir.tar.gz`` or a local folder)::

    store = ModelStore(client_kwargs, cache_dir)
    entry = store.endpoint_config("stocksage-dev-endpoint")
    variant = store.pick_variant(entry, target=None)       # by InitialVariantWeight
    loaded = store.model_for(entry, variant)               # a LoadedModel

A model version is keyed by the model's description and the archives' ETags: both archives
are extracted under ``cache_dir/<model>-<version>/{model,code}``, the program is imported in
isolation (a unique module name per version, its folder on ``sys.path`` only while it is
imported) and ``model_fn`` runs once per version. The variant -> model answer is re-checked
every ``revalidate_s`` seconds, so a configuration deleted and recreated under the same name,
or a new artifact under the same key, is noticed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import random
import shutil
import sys
import tarfile
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksage.local.sagemaker_host.container import LoadedModel, default_model_fn
from stocksage.local.sagemaker_host.errors import HostError

DEFAULT_CODE_ROOT = Path(__file__).resolve().parents[3] / "sagemaker"
"""The only local code directory a model may name by default: the repository's ``sagemaker/``."""


def _inside(code: Path, program: str) -> Path:
    """``code / program``, refused when ``SAGEMAKER_PROGRAM`` leaves the code directory
    (``../x.py``, an absolute path).

    Raises:
        ValueError: the program is not inside ``code``.
    """
    root = code.resolve()
    path = (root / program).resolve()
    if root not in path.parents:
        raise ValueError(f"SAGEMAKER_PROGRAM {program!r} is not a file inside the code "
                         "directory")
    return path

log = logging.getLogger("stocksage.local.sagemaker_host")

_IMPORT_LOCK = threading.Lock()


@dataclass
class Variant:
    """A production variant: its name, model and ``InitialVariantWeight``."""

    name: str
    model_name: str
    weight: float


@dataclass
class EndpointConfigEntry:
    """An endpoint configuration's production variants."""

    config_name: str
    variants: list[Variant]


def _safe(name: str) -> str:
    """``name`` usable as a folder or module name (at most 80 characters)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


class ModelStore:
    """Resolves endpoint configurations and loads model versions from the emulator.

    Args:
        client_kwargs: boto3 client keyword arguments for the emulator.
        cache_dir: Where model versions are extracted.
        revalidate_s: Seconds a variant's model is trusted before it is checked again.
    """

    def __init__(self, client_kwargs: dict[str, Any], cache_dir: str | Path,
                 revalidate_s: float = 10.0,
                 local_code_roots: tuple[str | Path, ...] = (DEFAULT_CODE_ROOT,)) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(client_kwargs)
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        self.sagemaker = boto3.client("sagemaker", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.cache_dir = Path(cache_dir)
        self.account = "123456789012"
        self._configs: dict[str, EndpointConfigEntry] = {}
        self._models: dict[str, LoadedModel] = {}  # version key -> model
        self._model_keys: dict[str, str] = {}  # model name -> version key
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        # (endpoint config, variant) -> (model, monotonic time it was checked)
        self._by_variant: dict[tuple[str, str], tuple[LoadedModel, float]] = {}
        self.revalidate_s = revalidate_s
        self.local_code_roots = tuple(Path(r).resolve() for r in local_code_roots)

    # ---------------------------------------------------------------- resolution
    def endpoint_config(self, endpoint_name: str) -> EndpointConfigEntry:
        """The production variants behind an endpoint (``DescribeEndpoint`` every call, the
        configuration cached by name).

        Raises:
            HostError: 400 ``ValidationError`` for an unknown endpoint or one not in service.
        """
        try:
            desc = self.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except Exception as err:  # noqa: BLE001
            code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
            if code in ("ValidationException", "ValidationError", "ResourceNotFound"):
                raise HostError(400, "ValidationError",
                                f"Endpoint {endpoint_name} of account {self.account} not found."
                                ) from None
            raise HostError(500, "InternalFailure", f"describe_endpoint failed: {err}") from None
        arn = desc.get("EndpointArn", "")
        if arn.count(":") >= 5:
            self.account = arn.split(":")[4]
        status = desc.get("EndpointStatus", "InService")
        if status not in ("InService", "Updating", "SystemUpdating"):
            raise HostError(400, "ValidationError",
                            f"Endpoint {endpoint_name} is not in service (status {status}).")
        name = desc["EndpointConfigName"]
        with self._lock:
            entry = self._configs.get(name)
        if entry is None:
            conf = self.sagemaker.describe_endpoint_config(EndpointConfigName=name)
            variants = [Variant(v["VariantName"], v["ModelName"],
                                float(v.get("InitialVariantWeight") or 1.0))
                        for v in conf.get("ProductionVariants", [])]
            entry = EndpointConfigEntry(name, variants)
            with self._lock:
                self._configs[name] = entry
        return entry

    def pick_variant(self, entry: EndpointConfigEntry, target: str | None) -> Variant:
        """The variant named ``target`` (``TargetVariant``), else one drawn by weight.

        Raises:
            HostError: no variants (424), or no variant named ``target`` (400).
        """
        if not entry.variants:
            raise HostError(424, "ModelError", "The endpoint configuration has no variants",
                            OriginalStatusCode=500, OriginalMessage="no production variants")
        if target:
            for v in entry.variants:
                if v.name == target:
                    return v
            raise HostError(400, "ValidationError",
                            f"Target variant {target} is not in the endpoint configuration.")
        if len(entry.variants) == 1:
            return entry.variants[0]
        weights = [max(v.weight, 0.0) for v in entry.variants]
        if sum(weights) <= 0:
            return entry.variants[0]
        return random.choices(entry.variants, weights=weights, k=1)[0]

    # ---------------------------------------------------------------- loading
    def model_for(self, entry: EndpointConfigEntry, variant: Variant) -> LoadedModel:
        """The loaded model of a variant; cached by configuration name and re-checked (model
        description and archive ETags) every ``revalidate_s`` seconds, so a configuration
        recreated under the same name is noticed."""
        key = (entry.config_name, variant.name)
        with self._lock:
            cached = self._by_variant.get(key)
        if cached and time.monotonic() - cached[1] < self.revalidate_s:
            return cached[0]
        if cached:  # re-read the configuration too
            with self._lock:
                self._configs.pop(entry.config_name, None)
        loaded = self.model(variant.model_name)
        with self._lock:
            self._by_variant[key] = (loaded, time.monotonic())
        return loaded

    def model(self, model_name: str) -> LoadedModel:
        """Load (or reuse) the current version of a SageMaker model."""
        desc = self.sagemaker.describe_model(ModelName=model_name)
        container = desc.get("PrimaryContainer") or (desc.get("Containers") or [{}])[0]
        env = dict(container.get("Environment") or {})
        data_url = container.get("ModelDataUrl") or (
            (container.get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
        source_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        program = env.get("SAGEMAKER_PROGRAM", "")
        key_parts = [model_name, str(desc.get("CreationTime", "")), data_url or "", program,
                     source_dir, self._etag(data_url), self._etag(source_dir)]
        version_key = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:16]
        with self._lock:
            loaded = self._models.get(version_key)
            if loaded is not None:
                return loaded
            lock = self._load_locks.setdefault(version_key, threading.Lock())
        with lock:
            with self._lock:
                if version_key in self._models:
                    return self._models[version_key]
            loaded = self._load(model_name, version_key, data_url, source_dir, program)
            with self._lock:
                self._models[version_key] = loaded
                self._model_keys[model_name] = version_key
            return loaded

    def _etag(self, url: str | None) -> str:
        if not url or not url.startswith("s3://"):
            return ""
        bucket, _, key = url[5:].partition("/")
        try:
            return self.s3.head_object(Bucket=bucket, Key=key).get("ETag", "").strip('"')
        except Exception as err:  # noqa: BLE001
            raise HostError(424, "ModelError", f"Could not read {url}: {err}",
                            OriginalStatusCode=500, OriginalMessage=str(err)) from None

    def _download_extract(self, url: str, dest: Path) -> None:
        bucket, _, key = url[5:].partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        dest.mkdir(parents=True, exist_ok=True)
        if key.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                tar.extractall(dest, filter="data")
        else:
            (dest / Path(key).name).write_bytes(body)

    def _load(self, model_name: str, version_key: str, data_url: str | None, source_dir: str,
              program: str) -> LoadedModel:
        root = self.cache_dir / f"{_safe(model_name)}-{version_key}"
        model_dir, code_dir = root / "model", root / "code"
        try:
            if root.exists():
                shutil.rmtree(root)
            model_dir.mkdir(parents=True)
            if data_url:
                if not data_url.startswith("s3://"):
                    raise ValueError(f"ModelDataUrl must be an s3:// URL, got {data_url!r}")
                self._download_extract(data_url, model_dir)
            module = None
            code: Path | None = None
            if source_dir.startswith("s3://"):
                self._download_extract(source_dir, code_dir)
                code = code_dir
            elif source_dir:
                code = self._local_code(source_dir)
            elif (model_dir / "code").is_dir():  # the PyTorch/sklearn "model.tar.gz/code" layout
                code = model_dir / "code"
            if program:
                if code is None:
                    code = model_dir
                module = self._import_program(_inside(code, program), version_key)
            elif code is not None and (code / "inference.py").exists():
                module = self._import_program(code / "inference.py", version_key)
            model_fn = getattr(module, "model_fn", None) if module else None
            model = (model_fn or default_model_fn)(str(model_dir))
        except HostError:
            raise
        except Exception as err:
            log.exception("loading model %s", model_name)
            raise HostError(424, "ModelError",
                            f"Received server error (500) from primary with message "
                            f'"{type(err).__name__}: {err}". Loading model {model_name} failed.',
                            OriginalStatusCode=500,
                            OriginalMessage=f"{type(err).__name__}: {err}") from None
        log.info("loaded model %s version %s", model_name, version_key)
        return LoadedModel(model_name, version_key, model_dir, code, module, model)

    def _local_code(self, source_dir: str) -> Path:
        """A local ``SAGEMAKER_SUBMIT_DIRECTORY`` (a path or ``file://``), only inside the
        host's ``local_code_roots`` (default: the repository's ``sagemaker/``): a model's
        environment must not make the host import code from anywhere on the machine.

        Raises:
            ValueError: the directory is outside every code root.
        """
        path = Path(source_dir.removeprefix("file://")).resolve()
        if not any(path == root or root in path.parents for root in self.local_code_roots):
            roots = ", ".join(str(r) for r in self.local_code_roots)
            raise ValueError(f"SAGEMAKER_SUBMIT_DIRECTORY {source_dir} is outside the host's "
                             f"code roots ({roots})")
        return path

    @staticmethod
    def _import_program(path: Path, version_key: str) -> types.ModuleType:
        if not path.exists():
            raise FileNotFoundError(f"inference program {path} not found")
        module_name = f"stocksage_sm_{_safe(path.stem)}_{version_key}"
        folder = str(path.parent)
        with _IMPORT_LOCK:
            before = set(sys.modules)
            sys.path.insert(0, folder)
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(folder)
                # sibling modules imported by the program belong to this version only
                for name in set(sys.modules) - before - {module_name}:
                    mod = sys.modules.get(name)
                    if str(getattr(mod, "__file__", "") or "").startswith(folder):
                        del sys.modules[name]
        return module

    def loaded_versions(self) -> dict[str, str]:
        """``{model name: version key}`` of the versions loaded last."""
        with self._lock:
            return dict(self._model_keys)

