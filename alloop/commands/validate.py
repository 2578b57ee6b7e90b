"""``alloop validate CAMPAIGN.yaml``: check a campaign file and show what it resolves to (a dry run)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from alloop.campaign.execution.jobqueue import check_cluster_options
from alloop.config import CampaignConfig, ScheduleConfig, load_campaign
from alloop.config.derived import no_auto_evaluation
from alloop.config.sources import DEFAULT, flatten, setting_sources
from alloop.config.sources import summary as summary_line
from alloop.evaluation.frames import read_evaluation_frames
from alloop.system.structures import summarize
from alloop.training.methods import STANDARD

ORDER = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a campaign file and print the resolved configuration",
        description="Validate a campaign file (presets, paths, structures vs fidelities) without running anything.",
    )
    parser.add_argument("campaign", help="the campaign YAML file")
    parser.add_argument("--json", action="store_true", help="print the resolved configuration as JSON")
    parser.add_argument("--sources", action="store_true",
                        help="print every resolved setting and where it came from (default, model or fidelity "
                        "preset, pretrained recipe, the file, a file it extends, --set)")
    parser.add_argument("--job-script", action="store_true",
                        help="print the batch job script of execution.cluster (slurm, pbs): one Dask worker job")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set schedule.strategy=naive (repeatable)",
    )
    parser.set_defaults(func=run)


def resolved_summary(cfg: CampaignConfig) -> dict[str, Any]:
    """What a user checks before a run: fidelities with hashes, structures, model, budgets, run dir."""
    fidelities = {
        role: {
            "name": fid.name,
            "family": fid.family,
            "method": fid.method,
            "basis": fid.basis,
            "density_fit": fid.density_fit,
            "level": fid.level,
            "hash": fid.hash(),
        }
        for role, fid in (("cheap", cfg.cheap_fidelity), ("expensive", cfg.expensive_fidelity))
    }
    return {
        "name": cfg.name,
        "run_dir": str(cfg.run_dir),
        "structures": {"source": cfg.system.structures, **summarize(cfg.load_structures())},
        "fidelities": fidelities,
        "evaluation": _evaluation(cfg),
    }


def _evaluation(cfg: CampaignConfig) -> dict[str, Any]:
    """The evaluation set's size and keys, and the fidelities its frames record (should be the expensive one); without
    a set, why not (``none``)."""
    ev = cfg.evaluation
    if ev is None:
        reason = no_auto_evaluation(cfg.load_structures())
        return {"none": reason or "switched off (evaluation: false in the file, or --set evaluation=false)"}
    if ev.structures is None:
        surface = cfg.evaluation_surface()
        assert surface is not None and ev.auto is not None  # EvaluationConfig: auto without structures
        return {"auto": ev.auto, "surface": surface.name, "temperature_K": cfg.md.temperature_K,
                "equilibration_fs": ev.equilibration_fs, "spacing_fs": ev.spacing_fs}
    frames = read_evaluation_frames(ev.structures, ev.energy_key, ev.forces_key)
    return {"source": str(ev.structures), "n_frames": frames.n_frames, "n_atoms": int(frames.numbers.size),
            "energy_key": ev.energy_key, "forces_key": ev.forces_key, "sha256": ev.sha256,
            "recorded_fidelity_hashes": frames.header["recorded_fidelity_hashes"]}


def _text(cfg: CampaignConfig, summary: dict[str, Any], sources: dict[str, str]) -> str:
    s, m, md, sch, ex = summary["structures"], cfg.model, cfg.md, cfg.schedule, cfg.execution
    atoms = str(s["n_atoms_min"]) if s["n_atoms_min"] == s["n_atoms_max"] else f"{s['n_atoms_min']}-{s['n_atoms_max']}"
    size = (f"pretrained '{m.base}' (fine-tuned)" if getattr(m, "base", None)
            else f"{m.n_layers} layers, {m.hidden_features} features")
    model = f"checkpoint {m.checkpoint}" if m.checkpoint else (
        f"{m.architecture} ({m.preset or 'custom'}): {size}, cutoff {m.cutoff_A:g} A, {m.dtype}"
    )
    if m.baseline:
        model += f"; Delta on a {m.baseline} baseline (learns label - {m.baseline})"
    limits = _schedule_limits(sch)
    where = ex.address or (f"scheduler file {ex.scheduler_file}" if ex.scheduler_file else None)
    if where is None and ex.cluster is not None:
        where = f"{ex.cluster.kind} cluster ({ex.cluster.preset or 'custom'})"
    lines = [
        f"campaign   {cfg.name}  (seed {cfg.seed})",
        f"run dir    {summary['run_dir']}",
        f"structures {s['n_structures']} x {atoms} atoms  {', '.join(s['formulas'])}"
        f"  charge {cfg.system.charge}, spin (2S) {cfg.system.spin}  <- {_sources(s['source'])}",
    ]
    if s.get("cell_A") is not None:
        lengths = np.linalg.norm(np.asarray(s["cell_A"]), axis=1)
        lines.append(f"cell       {' x '.join(f'{x:.3f}' for x in lengths)} A, periodic in 3D (shared by every start)")
    for role, f in summary["fidelities"].items():
        lines.append(f"{role:<10} {f['name']}: {f['level']}  hash {f['hash']}")
    lines += [
        f"model      {model}",
        f"md         {md.ensemble} {md.temperature_K:g} K, {md.timestep_fs:g} fs, {md.n_replicas} replicas"
        f" x {md.segment_steps} steps per segment"
        + (f", ladder {'/'.join(f'{x:g}' for x in md.temperature_ladder_K)} K" if md.temperature_ladder_K else ""),
        f"bootstrap  {_bootstrap_line(cfg)}",
        f"selection  {_selection_line(cfg)}",
        f"training   {_training_line(cfg.training)}",
        f"schedule   {sch.strategy}, {sch.n_cycles} cycles" + (f"; limits: {', '.join(limits)}" if limits else ""),
        f"execution  {where}",
    ]
    ev = summary["evaluation"]
    if "none" in ev:
        lines.append(f"evaluation none: {ev['none']}")
    elif "auto" in ev:
        lines.append(f"evaluation {ev['auto']} frames to make: {ev['surface']} Langevin MD at {ev['temperature_K']:g} K"
                     f" from the structures (new seeds), every {ev['spacing_fs']:g} fs after {ev['equilibration_fs']:g}"
                     " fs, labelled at the expensive fidelity (not counted in the label limits)"
                     + ("; the default: evaluation: false switches it off" if sources.get("evaluation.auto", "")
                        .startswith(DEFAULT) else ""))
    else:
        lines.append(f"evaluation {ev['n_frames']} frames ({ev['n_atoms']} atoms),"
                     f" {ev['energy_key']}/{ev['forces_key']}  sha256 {str(ev['sha256'])[:12]}  <- {ev['source']}")
        expensive = summary["fidelities"]["expensive"]["hash"]
        other = [h for h in ev["recorded_fidelity_hashes"] if h != expensive]
        if other:
            lines.append(f"note: the evaluation frames record fidelity {', '.join(other)}, not the expensive one"
                         f" ({expensive}); their energies must be of the expensive fidelity")
    return "\n".join(lines)


def _bootstrap_line(cfg: CampaignConfig) -> str:
    """How the first labels are made (with a model checkpoint too: its model is what they first train)."""
    b = cfg.schedule.bootstrap
    if b.method == "rattle":
        how = f"rattled copies ({b.amplitude_A:g} A)"
    elif b.method == "normal-modes":
        how = f"normal-mode samples at {b.temperature_K:g} K"
    else:
        surface = cfg.bootstrap_surface()
        how = (f"frames of {surface.name if surface else '?'} MD at {b.temperature_K:g} K, one every "
               f"{b.spacing_fs:g} fs after {b.equilibration_fs:g} fs")
    return f"{b.n_samples} {how}, {b.n_expensive} also expensive"


def run(args: argparse.Namespace) -> int:
    cfg = load_campaign(args.campaign, overrides=args.overrides)
    check_cluster_options(cfg.execution)  # the cluster classes' own option names (Dask: not in the config)
    if args.job_script:
        return _job_script(cfg)
    summary = resolved_summary(cfg)
    if args.json:
        print(json.dumps({"resolved": summary, "config": cfg.to_dict()}, indent=2))
    else:
        sources = setting_sources(args.campaign, cfg.to_dict(), args.overrides)
        print(_text(cfg, summary, sources))
        print(f"settings   {summary_line(sources)}" + ("" if args.sources else "  (--sources: each)"))
        if args.sources:
            print(_sources_table(cfg, sources))
        print("ok: the campaign is valid")
    return 0


def _sources_table(cfg: CampaignConfig, sources: dict[str, str]) -> str:
    """Every resolved setting with its value and where it came from."""
    values = flatten(cfg.to_dict())
    width = max(len(k) for k in values)
    return "\n".join(f"  {key:<{width}}  {json.dumps(value, default=str):<24}  <- {sources[key]}"
                     for key, value in values.items())


def _job_script(cfg: CampaignConfig) -> int:
    """Print the job script a batch cluster would submit; its scheduler address is that of the throwaway cluster made
    to render it (a run's jobs get the address of the run's own scheduler)."""
    from alloop.campaign.execution.jobqueue import job_script
    from alloop.errors import ConfigError

    cluster = cfg.execution.cluster
    if cluster is None or cluster.kind not in ("slurm", "pbs"):
        where = cluster.kind if cluster is not None else "an external scheduler"
        raise ConfigError(f"execution.cluster: --job-script needs a slurm or pbs cluster, this campaign uses {where}")
    print(job_script(cfg.execution).rstrip())
    return 0


def _selection_line(cfg: CampaignConfig) -> str:
    """Per cycle: how many frames get each label and how the expensive ones are chosen."""
    sel = cfg.selection
    score = {"committee": f"the force deviation of a committee of {sel.committee_size} models",
             "predicted-error": "the model's predicted force error"}.get(sel.expensive_pick, "bias B")
    if sel.density_weight is not None:
        score += f" x density^{sel.density_weight:g}"
    if sel.expensive_pick == "coverage":
        pick = "by coverage of feature space from the labelled frames"
    elif sel.expensive_pick == "lcmd":
        pick = "by largest cluster maximum distance (LCMD) from the labelled frames"
    elif sel.expensive_pick == "kmeans++":
        pick = "by k-means++ from the labelled frames (drawn with probability ~ distance^2)"
    elif sel.pick_beta is not None:
        gain = f"({score} x distance)" if sel.diversity == "fps" else score
        pick = f"drawn with probability ~ {gain}^{sel.pick_beta:g}"
    else:
        pick = f"by {score} x distance" if sel.diversity == "fps" else f"by top {score}"
    if sel.exploration < 1:
        pick += f", after a {1 - sel.exploration:.0%} quota of each pick by kernel herding ({sel.herding_target})"
    fill = f" (at least {sel.min_cheap_per_cycle})" if sel.min_cheap_per_cycle else ""
    return f"per cycle <= {sel.max_cheap_per_cycle} cheap{fill}, <= {sel.max_expensive_per_cycle} expensive {pick}"


def _schedule_limits(sch: ScheduleConfig) -> list[str]:
    """The schedule's limits and stop rules besides its cycles, in words."""
    limits = [f"{role} <= {n}"
              for role, n in (("cheap", sch.max_labels.cheap), ("expensive", sch.max_labels.expensive)) if n]
    if sch.budget_cpu_seconds:
        limits.append(f"{sch.budget_cpu_seconds:g} CPU s")
    limits += [f"{role} {hours:g} CPU h" for role, hours in
               (("cheap", sch.budget_cpu_hours.cheap), ("expensive", sch.budget_cpu_hours.expensive)) if hours]
    if sch.stop_when_nothing_new:
        limits.append("stop when a cycle brings nothing new")
    if sch.deadline is not None:
        limits.append(f"deadline {sch.deadline.isoformat()}")
    if sch.max_hours is not None:
        limits.append(f"{sch.max_hours:g} h per run")
    return limits


def _training_line(t) -> str:
    """The training recipe in one line: method, loss, budget, learning rates, warm start."""
    steps, finetune = t.stage_steps()
    budget = f"{t.max_epochs} epochs per stage" if steps is None else f"{steps} + {finetune} (stage 3) steps"
    warm = f", warm start x{t.warm_start_fraction:g}" if t.warm_start else ", every cycle from scratch"
    if t.warm_start and t.warm_start_lr_factor != 1:
        warm += f" at {t.warm_start_lr_factor:g} x lr"
    if t.replay_fraction:
        warm += f", replay {t.replay_fraction:g} of each batch"
    if t.final_retrain:
        warm += ", final retrain" + (f" x{t.final_steps_factor:g} steps" if t.final_steps_factor != 1 else "")
        warm += " then a refit on every label" if t.final_refit else ""
        warm += (f", its error model calibrated on {t.calibration_folds} cross-validation folds"
                 if t.calibration_folds > 1 else "")
    if t.threads:
        warm += f", {t.threads} torch threads"
    if t.method == STANDARD:  # one stage on the expensive labels: no stage 3, no bias weights
        budget = f"{t.max_epochs} epochs" if steps is None else f"{steps} steps"
        return (f"standard, {t.loss} (energy weight {t.energy_weight:g}), {budget} of batch {t.batch_size}, "
                f"lr {t.learning_rate_pretrain:g}, EMA {t.ema_decay}{warm}")
    if len(t.gamma_grid) == 1:
        gamma = f"gamma fixed at {t.gamma_grid[0]:g} x median B"
    else:
        gamma = f"gamma searched over {list(t.gamma_grid)} x median B"
    return (f"{t.method}, {t.loss} (energy weight {t.energy_weight:g}), {budget} of batch {t.batch_size}, "
            f"lr {t.learning_rate_pretrain:g} / {t.finetune_lr():g}, EMA {t.ema_decay}{warm}, {gamma}")


def _sources(source: str | list[str]) -> str:
    """``system.structures`` as one line: a source, or several separated by commas."""
    return source if isinstance(source, str) else ", ".join(source)
