"""A store's fidelity roles (alloop.store.coverage.fidelity_roles) without building fidelity models, and
``alloop status`` reading a store without importing pydantic."""

from __future__ import annotations

import subprocess
import sys

from store_helpers import make_frame, make_label

from alloop.fidelity import load_fidelity
from alloop.store import CampaignStore, resolve_fidelity, store_path
from alloop.store.coverage import fidelity_roles

_STATUS_WITHOUT_PYDANTIC = """
import contextlib, io, sys
from alloop.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["status", sys.argv[1]])
assert code in (0, None), code
assert "hf-sto3g" in out.getvalue(), out.getvalue()
print(sorted(m for m in sys.modules if m == "pydantic" or m == "alloop.fidelity"))
"""


def _store(tmp_path, fidelities: dict) -> CampaignStore:
    path = store_path(tmp_path / "run")
    with CampaignStore.create(path, {"fidelities": fidelities}) as store:
        ids = store.add_frames([make_frame(2)], origin="bootstrap", cycle=-1)  # 3 atoms
        store.add_labels(load_fidelity("hf-sto3g"), ids, [make_label(0, 3)])
        store.add_labels(load_fidelity("mp2-dz"), ids, [make_label(1, 3)])
        store.commit(cycle=-1, phase="labelled")
    return CampaignStore.open(path, "r")


def _resolved(store: CampaignStore) -> dict[str, str]:
    return {resolve_fidelity(role, store.config, store.fidelities()).hash(): role for role in ("cheap", "expensive")}


def test_roles_from_stored_specs_and_preset_names_match_full_resolution(tmp_path):
    # a campaign stores each role's resolved spec; a hand-made config may name a preset
    specs = {"cheap": load_fidelity("hf-sto3g").model_dump(), "expensive": "mp2-dz"}
    with _store(tmp_path, specs) as store:
        roles = fidelity_roles(store)
        assert sorted(roles.values()) == ["cheap", "expensive"]
        assert roles == _resolved(store)


def test_a_role_no_stored_fidelity_has_is_left_out(tmp_path):
    with _store(tmp_path, {"cheap": "hf-sto3g", "expensive": "b3lyp-svp"}) as store:
        assert fidelity_roles(store) == {load_fidelity("hf-sto3g").hash(): "cheap"}


def test_status_reads_a_store_without_pydantic(tmp_path):
    specs = {role: load_fidelity(name).model_dump() for role, name in (("cheap", "hf-sto3g"), ("expensive", "mp2-dz"))}
    with _store(tmp_path, specs):
        pass
    out = subprocess.run([sys.executable, "-c", _STATUS_WITHOUT_PYDANTIC, str(tmp_path / "run")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
