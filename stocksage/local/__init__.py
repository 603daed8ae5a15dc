"""The local runtime: what the embedded AWS (moto) does not run by itself.

* ``stocksage.local.emulator``: moto's server (``Emulator``, ``python -m ... serve``) with the
  project's patches (``stocksage.local.moto_patches``).
* ``stocksage.local.lambda_invoker``: in-process Lambda invocation (``LambdaFunction``).
* ``stocksage.local.esm``: the Kinesis event source mapping engine (``EsmEngine``).
* ``stocksage.local.sagemaker_host``: the SageMaker runtime/endpoint host (``SageMakerHost``).
* ``stocksage.local.training`` / ``training_jobs``: script-mode training jobs, run locally.
* ``stocksage.local.firehose``, ``scheduler``, ``events``: Firehose delivery, EventBridge
  Scheduler schedules, delivery of events to rule targets.
* ``stocksage.local.runtime``: all of it together (``LocalRuntime``), with a CLI.
* Shared pieces: ``clients`` (boto3 clients on the emulator), ``checkpoints`` (stream reader
  positions), ``daemon`` (background processes, pid and log files).

Submodules are imported on demand: importing this package does not import moto or boto3.
"""
