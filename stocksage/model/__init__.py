"""Next-bar direction model: labels, walk-forward splits, baselines, metrics, artifact.

Modules (import them directly; this package imports nothing heavy on its own):

* ``dataset``: labelled, pooled training frames from bar history (no look-ahead).
* ``walkforward``: time-ordered folds with embargo and label-time purge.
* ``baselines``: majority-class and (smoothed) last-move persistence forecasts.
* ``metrics``: log loss, Brier, AUC, accuracy, block bootstrap, and the SageMaker
  ``METRIC_DEFINITIONS`` (regexes for the lines ``sagemaker/train.py`` prints).
* ``estimator``: ``make_model(model_type, ...)`` (sklearn Pipeline).
* ``evaluate``: walk-forward evaluation, margins over the best baseline, verdict.
* ``artifact``: ``model.tar.gz`` contents (``model.joblib``, ``metadata.json``,
  ``metrics.json``), reproducible tarring.
* ``sourcedir``: builds ``sourcedir.tar.gz`` (the SageMaker submit directory).
"""
