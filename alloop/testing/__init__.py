"""Conformance checks for a user's own Potential and Labeler (importable from their tests): ``potentials``
(``check_potential``), ``heads`` (``check_two_head``), ``labelers`` (``check_labeler``, ``check_result_shape``; and
``wait_labeler``, a labeller of fixed cost and ~0 CPU for scheduling tests and benchmarks), and ``cells``
(``water_box``: periodic structures to run them on). alloop's own kill and fault-injection harness lives with its
tests (``tests/harness``), outside the wheel."""
