"""The molecule names a campaign file or ``alloop label`` may give instead of a file: those ase.build.molecule knows,
read without importing ase.collections (a database opened for a name lookup cost every such command a second)."""

import subprocess
import sys

from alloop.io import molecule_names


def test_the_names_are_those_ase_build_molecule_knows():
    from ase.build.molecule import extra
    from ase.collections import g2

    assert molecule_names() == frozenset(g2.names) | frozenset(extra)


def test_resolving_a_name_does_not_import_the_collections():
    code = ("import sys; from alloop.system.structures import resolve_source; "
            "assert resolve_source('CH3CH2OH', '.') == 'CH3CH2OH'; print('ase.collections' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
