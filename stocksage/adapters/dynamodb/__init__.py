"""DynamoDB adapters, one per table, over a shared low-level layer.

- ``state_store``: ``DynamoStateStore`` (the ``window-state`` table, one item per symbol).
- ``result_store``: ``DynamoResultStore`` (the ``results`` table, one item per bar).
- ``rule_source``: ``DynamoRuleSource`` and ``put_rule`` (the ``alert-rules`` table).
- ``calls``: the wire format of items, error reasons, bounded retries of batch calls.
- ``values``: plain Python values to and from what DynamoDB's resource API stores.
"""
