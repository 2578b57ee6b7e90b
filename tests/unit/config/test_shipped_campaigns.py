"""Every shipped campaign file resolves to the configuration it resolved to before the defaults changed (issue 63):
the library defaults became the benchmarks' settings, the quickstarts dropped what became a default, and the other
files name the old defaults they were measured with. The snapshot (tests/data/campaigns_resolved.json, paths
relative to the repository) was taken before the change; a key added since may be new, no recorded value may
change. Regenerate it only for a deliberate change of a shipped campaign: ``python -m tests.unit.config.
test_shipped_campaigns``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alloop.config import load_campaign

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "tests" / "data" / "campaigns_resolved.json"
FILES = sorted(p.name for p in (ROOT / "campaigns").glob("*.yaml"))


def resolved(name: str) -> dict[str, Any]:
    """A shipped campaign's resolved config as JSON data, with the repository's path as ``<repo>``."""
    text = json.dumps(load_campaign(ROOT / "campaigns" / name).to_dict(), sort_keys=True, default=str)
    return json.loads(text.replace(str(ROOT), "<repo>"))


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value (a section that is null is one key)."""
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flat(value, f"{prefix}{key}."))
    return out


def test_the_snapshot_covers_every_shipped_campaign():
    assert sorted(json.loads(SNAPSHOT.read_text())) == FILES


#: campaigns whose model start is run data (not in git; benchmarks/artefacts.yaml restores or remakes it)
NEEDS_RUN_DATA = {"reline-szv-start.yaml": ROOT / "runs" / "reline_sevennet0_szv.pt"}


@pytest.mark.parametrize("name", FILES)
def test_a_shipped_campaign_resolves_as_before(name):
    if name in NEEDS_RUN_DATA and not NEEDS_RUN_DATA[name].is_file():
        pytest.skip(f"{name} starts from {NEEDS_RUN_DATA[name].name}, run data not in git "
                    "(python benchmarks/artefacts.py restore reline-sevennet0-szv)")
    before = flat(json.loads(SNAPSHOT.read_text())[name])
    now = flat(resolved(name))
    changed = {k: (v, now.get(k, "<absent>")) for k, v in before.items() if now.get(k, "<absent>") != v}
    assert not changed, f"{name}: resolved values changed (before, now): {changed}"


def test_the_quickstarts_set_only_what_makes_them_quick():
    """The settings that became defaults are gone from the quickstarts, and still resolve to the same values."""
    for name in ("quickstart.yaml", "universal-quickstart.yaml"):
        import yaml

        data = yaml.safe_load((ROOT / "campaigns" / name).read_text())
        assert "baseline" not in data.get("model", {})
        assert "method" not in data.get("training", {}) and "final_refit" not in data.get("training", {})
        assert "expensive_pick" not in data.get("selection", {}) and "restart_from" not in data.get("md", {})
        assert "method" not in data.get("schedule", {}).get("bootstrap", {})
        cfg = load_campaign(ROOT / "campaigns" / name)
        assert (cfg.model.baseline, cfg.training.method, cfg.training.final_refit) == ("gfn2-xtb", "standard", True)
        assert (cfg.selection.expensive_pick, cfg.md.restart_from, cfg.schedule.bootstrap.method) == \
            ("predicted-error", "last-stable", "md")
        assert cfg.selection.min_cheap_per_cycle == 12
    universal = load_campaign(ROOT / "campaigns" / "universal-quickstart.yaml").training
    assert (universal.batch_size, universal.energy_weight, universal.warm_start_lr_factor) == (4, 0.1, 0.3)


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps({name: resolved(name) for name in FILES}, indent=1, sort_keys=True) + "\n")
