"""Dask plumbing of a campaign: clusters (local, SLURM, PBS), task submission with retries, worker losses,
the labelling pool. Imports nothing from the other two rooms."""
