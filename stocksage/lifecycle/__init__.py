"""Model lifecycle: scheduled retraining, the quality gate, versions, promotion, rollback.

Plain domain logic (no boto3); the Lambdas (``lambdas/retrain.py``, ``lambdas/promote.py``)
wire it to the adapters in ``stocksage.adapters.model_registry`` and
``stocksage.adapters.sagemaker_platform``.

* ``schedule``: one schedule tick -> the training window, an idempotent training-job name and
  the ``CreateTrainingJob`` request (script mode, metric definitions, champion channel).
* ``gate``: the quality gate a candidate must pass to be promoted.
* ``versions``: the record of every model version (metrics, data range, verdict, status) and
  the choice of the rollback target.
* ``promote``: what to do with a finished training job (record, gate, deploy) and rollback.
* ``report``: the HTML lifecycle report (``make report``); imports plotly, never in a Lambda.
"""
