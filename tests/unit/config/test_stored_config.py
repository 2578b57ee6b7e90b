"""A stored config (what a store keeps: every key resolved) re-read with ``check_files=False`` reads back the same
without reading the structures: the dashboard, report and resume re-read it, and a molecule name cost them a second
of ASE's database, a moved structures file nothing (derived defaults are never re-derived from the structures)."""

from __future__ import annotations

from pathlib import Path

from alloop.config import CampaignConfig, load_campaign

TINY = """
name: tiny
system: {structures: start.xyz}
fidelities: {cheap: hf-sto3g, expensive: b3lyp-svp}
model: {preset: small}
"""


def test_a_stored_config_reads_back_the_same_without_its_structures(tmp_path):
    from ase.build import molecule
    from ase.io import write

    write(tmp_path / "start.xyz", molecule("CH3CH2OH"))
    (tmp_path / "tiny.yaml").write_text(TINY)
    cfg = load_campaign(tmp_path / "tiny.yaml")
    assert cfg.model.baseline == "gfn2-xtb" and cfg.evaluation is not None  # derived from the structures
    stored = cfg.to_dict()
    (tmp_path / "start.xyz").unlink()  # the inputs moved
    assert CampaignConfig.from_dict(stored, check_files=False).to_dict() == stored


def test_re_reading_a_stored_config_opens_no_structure(monkeypatch):
    import alloop.config.derived as derived

    cfg = load_campaign(Path(__file__).resolve().parents[3] / "campaigns" / "quickstart.yaml")  # a molecule name
    stored = cfg.to_dict()

    def no_read(*_args):
        raise AssertionError("a stored config read its structures")

    monkeypatch.setattr(derived, "_structures", no_read)
    assert CampaignConfig.from_dict(stored, check_files=False).to_dict() == stored
