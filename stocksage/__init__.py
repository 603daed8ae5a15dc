"""stocksage: a serverless AWS streaming stack for stock analytics.

The package holds the domain code shared by the processor Lambda, the collector, training
and the local runtime. Domain modules never import boto3; the processor's AWS access lives in
``stocksage.adapters`` (import contracts in pyproject.toml, checked by ``make lint``).
"""

__version__ = "0.1.0"
