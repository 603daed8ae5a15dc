"""Data-access layer: the only place where stocksage talks to AWS (boto3).

Each adapter implements a port of the domain (see ``stocksage.processing``) with the fewest
calls the service allows: one BatchGetItem per batch, BatchWriteItem with retries of
unprocessed items, one InvokeEndpoint per payload-size chunk.
"""
