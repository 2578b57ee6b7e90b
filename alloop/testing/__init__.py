"""Conformance checks for a user's own Potential and Labeler (importable from their tests): ``potentials``
(``check_potential``), ``heads`` (``check_two_head``), ``labelers`` (``check_labeler``, ``check_result_shape``), and
``cells`` (``water_box``: periodic structures to run them on). alloop's own kill and fault-injection harness lives
with its tests (``tests/harness``), outside the wheel."""
