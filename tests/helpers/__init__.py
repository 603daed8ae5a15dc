"""Helpers shared by the unit and integration tests.

- ``tests.helpers.events``: Lambda events from the JSON fixtures in ``tests/events/``
  (``load_event``) and Kinesis Data Streams events built from bars or raw payloads
  (``kinesis_event``, ``kinesis_record``), in the shape Lambda delivers them;
- ``tests.helpers.lambda_context``: a ``LambdaContext`` stand-in (also the ``lambda_context``
  fixture of ``tests/conftest.py``);
- ``tests.helpers.predictors``: the logistic stand-in model on real returns;
- ``tests.helpers.aws``: boto3 arguments for an emulator (``client_kwargs``; the unit tests'
  shared emulator is the ``emulator``/``kw`` fixture pair of ``tests/unit/conftest.py``).
"""
