"""Lambda handlers: thin entry points (parse event, typed settings, observability).

Each handler calls plain domain logic in ``stocksage`` through adapters in
``stocksage.adapters``. Handler strings in Terraform: ``lambdas.<module>.lambda_handler``.
"""
