"""Operator use cases over the processor's ports: recovery and redrive.

- ``recovery``: rebuild one symbol's state and results from its results items and S3 history
  (late bars repaired into the series), pure domain code.
- ``redrive``: reprocess the ranges the event source mapping gave up on, and ``repair``; the
  I/O sits behind small protocols implemented in ``stocksage.adapters``.

``stocksage redrive`` and ``stocksage repair`` (``stocksage.cli``) wire them to AWS.
"""
