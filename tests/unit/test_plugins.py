"""Extending mfsde from outside: a PairwiseInteraction written in one file, registered by name,
checked with mfsde.testing.check_interaction, used in configs and by the CLI (--plugin)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import mfsde
from mfsde.cli import main as cli_main
from mfsde.interactions import INTERACTIONS, Interaction, PairwiseInteraction
from mfsde.testing import check_interaction

PLUGIN = textwrap.dedent('''
    import torch
    from mfsde.interactions import INTERACTIONS, PairwiseInteraction

    @INTERACTIONS.register("test_alignment")
    class Alignment(PairwiseInteraction):
        """Cucker-Smale-like: pulled towards neighbours within a learnable range."""
        def __init__(self, dim, strength=0.5, chunk_size=None):
            super().__init__(dim, chunk_size=chunk_size)
            self.strength = torch.nn.Parameter(torch.tensor(float(strength)))
            self.log_range = torch.nn.Parameter(torch.zeros(()))

        def phi(self, x_i, dx):
            r2 = dx.pow(2).sum(-1, keepdim=True)
            return self.strength * torch.exp(-r2 * torch.exp(-2 * self.log_range)) * dx
''')


@pytest.fixture
def plugin_file(tmp_path, registry_cleanup):
    path = tmp_path / "my_kernels.py"
    path.write_text(PLUGIN)
    return path


def test_a_one_file_kernel_works_by_name(plugin_file):
    from mfsde._plugins import load_plugins

    assert load_plugins([str(plugin_file)], entry_points=False) == [str(plugin_file)]
    k = INTERACTIONS.build("test_alignment", dim=3)
    assert isinstance(k, PairwiseInteraction)
    assert check_interaction(k)[-2:] == ["reference", "gradients"]
    cfg = mfsde.preset("scimf", dim=2).override(
        **{
            "model.inter.name": "test_alignment",
            "model.inter.strength": 1.0,
            "train.iterations": 2,
            "train.n_particles": 16,
        }
    )
    assert cfg.model.inter.options == {"strength": 1.0}  # the attention options are gone
    rng = np.random.default_rng(0)
    snaps = mfsde.Snapshots([0.0, 1.0, 2.0], [rng.normal(size=(30, 2)) + k for k in range(3)])
    res = mfsde.fit(cfg, snaps, "loo:1", progress=False)
    assert type(res.model.drift.inter).__name__ == "Alignment" and np.isfinite(res.history[-1]["loss"])


def test_cli_plugin_option(plugin_file, tmp_path, capsys):
    rng = np.random.default_rng(0)
    csv = tmp_path / "d.csv"
    rows = ["samples,x,y"] + [f"{t},{a:.4f},{b:.4f}" for t in range(3) for a, b in rng.normal(size=(30, 2)) + t]
    csv.write_text("\n".join(rows) + "\n")
    argv = [
        "fit",
        "--data",
        str(csv),
        "--task",
        "loo:1",
        "--iterations",
        "2",
        "--n-particles",
        "16",
        "--set",
        "model.inter.name=test_alignment",
        "--set",
        "eval.n_particles=20",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    assert cli_main(["--plugin", str(plugin_file), *argv]) == 0
    INTERACTIONS._table.pop("test_alignment")
    assert cli_main(argv) == 2
    assert "unknown interaction 'test_alignment'" in capsys.readouterr().err
    assert cli_main(["--plugin", "no_such_module_xyz", *argv]) == 2
    assert "--plugin: No module named 'no_such_module_xyz'" in capsys.readouterr().err


class _SelfIncluding(Interaction):
    """Broken on purpose: adds the particle's own state (not zero at N = 1)."""

    def forward_rows(self, x, rows, t=None):
        return x[..., rows, :] * 0.1


class _FakeSymmetric(PairwiseInteraction):
    symmetric = True  # declared, but φ depends on the receiver's own state: weights are not symmetric

    def phi(self, x_i, dx):
        return x_i.pow(2).sum(-1, keepdim=True) * dx


class _NotEquivariant(PairwiseInteraction):
    def phi(self, x_i, dx):
        return dx

    def forward_rows(self, x, rows, t=None):
        out = super().forward_rows(x, rows, t)
        return out + (x[..., :1, :] - x[..., -1:, :])  # depends on which particles come first and last


@pytest.mark.parametrize(
    "kernel, property_",
    [
        (_SelfIncluding(3), "single_particle"),
        (_FakeSymmetric(3), "declared symmetric"),
        (_NotEquivariant(3), "equivariant"),
    ],
)
def test_check_interaction_catches_broken_kernels(kernel, property_):
    with pytest.raises(AssertionError, match=property_):
        check_interaction(kernel)
