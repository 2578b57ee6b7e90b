"""Evaluation: everything that scores a model on labelled frames.

- :mod:`~alloop.evaluation.frames`: a labelled set as plain arrays (read from extxyz, packed for the store).
- :mod:`~alloop.evaluation.metrics`: a Potential's errors on labelled frames (MAE, RMSE; per molecule, per basin).
- :mod:`~alloop.evaluation.records`: a campaign's stored set and each model's scores, read for status and reports.
- :mod:`~alloop.evaluation.scoring`: the scores the training task computes on a worker (errors, coverage,
  predicted error), so the driver loads no model.
- :mod:`~alloop.evaluation.campaign`: a campaign's set copied into its store at start, checked on resume, and every
  model's scores recorded.
- :mod:`~alloop.evaluation.molecule_table`, :mod:`~alloop.evaluation.predicted_errors`: the per-molecule table and
  the per-cycle predicted-against-measured errors of ``alloop status``, reports and the dashboard.
- :mod:`~alloop.evaluation.evaluate`: ``alloop evaluate``: a checkpoint or a campaign's model on a labelled file.

The campaign file's ``evaluation:`` section is :mod:`alloop.config.evaluation` (with the other sections of the
schema). The modules sit on different floors of the package layout (tests/unit/test_layout.py): frames below the
config, metrics below training (which scores its own models with them), records beside the store, scoring and the
campaign's records beside training, ``evaluate`` beside model loading. So this file imports none of them.
"""
