"""MLFF-driven molecular dynamics: batched replicas, stability guards, resumable state."""
