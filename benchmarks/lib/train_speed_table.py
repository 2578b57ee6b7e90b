"""The table of ``train_speed.py``: SevenNet-0 step time of alloop's trainer against sevenn's own loop."""

from __future__ import annotations

from typing import Any

import numpy as np

from lib.common import markdown_table

#: the ratios of a repeat: name -> (alloop's time, sevenn's time), keys of their timings
RATIOS = {
    "ratio": ("ms_per_step", "ms_per_step"),
    "ratio_with_validation": ("ms_per_step", "with_validation_ms_per_step"),
    "cpu_ratio_call": ("call_cpu_ms_per_step", "with_validation_cpu_ms_per_step"),
}


def train_speed_table(results: list[dict[str, Any]]) -> str:
    """ms per step (mean +- std over repeats) of each loop, and the ratio, per variant."""
    def cell(values: list[float]) -> str:
        a = np.asarray(values)
        return f"{a.mean():.0f} ± {a.std(ddof=1):.0f}" if a.size > 1 else f"{a.mean():.0f}"

    rows = []
    for res in results:
        reps = res["repeats"]
        rows.append([res["variant"], cell([r["alloop"]["ms_per_step"] for r in reps]),
                     cell([r["alloop"]["call_ms_per_step"] for r in reps]),
                     f"{np.mean([r['alloop']['setup_s'] for r in reps]):.1f}",
                     cell([r["sevenn"]["ms_per_step"] for r in reps]),
                     cell([r["sevenn"]["with_validation_ms_per_step"] for r in reps]),
                     *(f"{res[name + '_mean']:.3f} ± {res[name + '_std']:.3f}" for name in RATIOS),
                     f"{res['loss_check'][0]:.6g} / {res['loss_check'][1]:.6g}"])
    return markdown_table(["data", "alloop ms/step", "alloop call ms/step", "alloop setup s", "sevenn ms/step",
                           "sevenn + validations ms/step", "ratio", "ratio to sevenn + validations",
                           "CPU ratio: alloop call / sevenn + validations", "loss check alloop / sevenn"], rows)
