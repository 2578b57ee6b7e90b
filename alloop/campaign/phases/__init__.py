"""A campaign's phases and what they run on: typed settings, the phase context, explore, label, select, train,
bootstrap, evaluation, budget, cycle records. Imports the execution room (the worker tasks), not the loop."""
