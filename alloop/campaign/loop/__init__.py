"""The campaign loop: start and resume (runner), the synchronous driver, the asynchronous pipeline, progress
output. The top room: it runs the phases on the execution room's clusters.

Why two loops. The synchronous driver (:mod:`.driver`) runs a cycle's phases one after the other with the
newest model: cycle k always explores with cycle k-1's model, so a run is a function of its seed on one
machine (resumed or not), and it is the reference the asynchronous mode is measured against. The pipeline
(:mod:`.pipeline`) lets cycle k explore with a model up to two cycles old, whichever is committed when its
inputs are ready: which model explores which cycle then depends on how long the tasks took. The pipeline with
one cycle in flight would wait at the same points as the driver, but its bookkeeping (futures of several
cycles, a stop rule that drops work in flight) is what a reader of the synchronous path would have to
understand; the driver keeps that path a plain sequence of the same phases with the same ``progress`` marks
(:mod:`alloop.store.ledger`), from which both resume a killed run the same way.
"""
