"""stocksage: a serverless AWS streaming stack for stock analytics.

The package holds the domain code shared by the processor Lambda, the collector, training
and the local runtime. Domain modules never import boto3; AWS access lives in
``stocksage.adapters``.
"""

__version__ = "0.1.0"
