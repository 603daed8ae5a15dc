"""The local runtime: what the embedded AWS (moto) does not run by itself.

* ``stocksage.local.emulator``: moto's server with the project's patches (``Emulator``).
* ``stocksage.local.lambda_runtime``: in-process Lambda invocation (``LambdaFunction``).
* ``stocksage.local.esm``: the Kinesis event source mapping engine (``EsmEngine``).
* ``stocksage.local.sagemaker_host``: the SageMaker runtime/endpoint host (``SageMakerHost``).
* ``stocksage.local.runtime``: all of it together (``LocalRuntime``), with a CLI.

Submodules are imported on demand: importing this package does not import moto or boto3.
"""
