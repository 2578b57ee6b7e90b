"""A campaign's phases and what they run on: typed settings, the phase context, the worker tasks, explore,
label, select, train, bootstrap, evaluation, budget, cycle records. Imports the execution room, not the loop."""
