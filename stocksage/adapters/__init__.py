"""Adapters of the processor's ports and of the operator use cases: boto3, one per file.

Each adapter implements a port of the domain (``stocksage.processing.ports``,
``stocksage.operations.redrive``) with the fewest calls the service allows: one BatchGetItem
per batch, BatchWriteItem with retries of unprocessed items, one InvokeEndpoint per
payload-size chunk. ``memory`` implements the same ports in memory (tests, benchmarks) and
``wiring`` builds the processor's set from its settings. The domain never imports this package
(an import contract of ``make lint``).

AWS is also called, outside this package, by the collector (its Kinesis sink and S3 cursor,
``stocksage.collector``), the Lambda handlers of the model lifecycle (``lambdas/``) and the
local runtime (``stocksage.local``), each through its own small boto3 layer.
"""
