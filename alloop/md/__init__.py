"""MLFF-driven molecular dynamics: batched replicas, stability guards, resumable state."""

from alloop.md.events import BondSet, ReactionEvent
from alloop.md.guards import STOP_CODES, GuardFailure, GuardReport, ReplicaGuards, StabilityGuards, detect_bonds
from alloop.md.integrators import LangevinBAOAB, VelocityVerlet, kinetic_energy, kinetic_temperature
from alloop.md.segment import MDProgress, MDSettings, ReplicaTrajectory, SegmentResult, restart_replica, run_segment
from alloop.md.state import ReplicaState, init_replicas, maxwell_boltzmann_velocities, redraw_velocities

__all__ = [
    "STOP_CODES",
    "BondSet",
    "GuardFailure",
    "GuardReport",
    "LangevinBAOAB",
    "MDProgress",
    "MDSettings",
    "ReactionEvent",
    "ReplicaGuards",
    "ReplicaState",
    "ReplicaTrajectory",
    "SegmentResult",
    "StabilityGuards",
    "VelocityVerlet",
    "detect_bonds",
    "init_replicas",
    "kinetic_energy",
    "kinetic_temperature",
    "maxwell_boltzmann_velocities",
    "redraw_velocities",
    "restart_replica",
    "run_segment",
]
