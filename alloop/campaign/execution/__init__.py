"""Dask plumbing of a campaign: clusters (local, SLURM, PBS), task submission with retries, worker losses,
the labelling pool, and the tasks that run on the workers (MD segments, bias, training, evaluation scores).
Imports nothing from the other two rooms."""
