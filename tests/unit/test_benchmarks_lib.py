"""The helpers ``benchmarks/lib`` gives several scripts: cached rows, the recipe benchmarks' sizes, the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def lib(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import lib.common
    import lib.plots

    return lib


def test_a_cached_row_is_computed_once_then_read(lib, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"force_mae": 0.25, "seeds": [1, 2]}

    path = tmp_path / "row.json"
    first = lib.common.cached_json(path, compute)
    again = lib.common.cached_json(path, compute)
    assert first == again == {"force_mae": 0.25, "seeds": [1, 2]} and len(calls) == 1


def test_recipe_sizes_refuse_an_unknown_recipe_and_a_size_outside_the_training_frames(lib):
    assert lib.common.recipe_sizes(["a"], {"a": 1, "b": 2}, "5,52,100") == [5, 52, 100]
    with pytest.raises(SystemExit, match=r"unknown recipe\(s\) \['c'\]; known: a, b"):
        lib.common.recipe_sizes(["a", "c"], {"a": 1, "b": 2}, "52")
    with pytest.raises(SystemExit, match="--n must be within 5..100"):
        lib.common.recipe_sizes(["a"], {"a": 1}, "52,101")


def test_a_figure_is_a_2d_grid_saved_on_leaving(lib, tmp_path, capsys):
    path = tmp_path / "curve.png"
    with lib.plots.figure(path, 1, 3, (6, 2)) as axes:
        assert axes.shape == (1, 3) and not path.exists()
        axes[0][1].plot([1, 2], [3, 4])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {path}" in capsys.readouterr().out
