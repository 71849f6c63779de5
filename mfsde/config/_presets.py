"""The named presets: ``scimf`` and its kernel ablations, and ``scimf_paper`` (scIMF's exact recipe).

A preset is a function ``dim → Config`` registered in :data:`PRESETS`; :func:`preset` builds one by name.
"""

from __future__ import annotations

from mfsde.config._schema import Component, Config, ModelConfig
from mfsde.registry import Registry

#: at most this many features, the scimf presets leave out the LayerNorm on queries/keys/values
#: (over d ≤ 3 features it maps every cell to one of two points (d = 2) or a circle (d = 3), and the
#: attention cannot tell cells apart)
LOW_DIM_NO_LAYER_NORM = 3


#: preset name → function ``dim → Config``; add your own with ``@PRESETS.register("mine")``
PRESETS = Registry("preset")


@PRESETS.register("scimf")
def _scimf(dim: int) -> Config:
    cfg = Config(model=ModelConfig(dim=dim), preset="scimf")
    # f_inter ≡ 0 at the start (the FFN's output layer at zero): the model starts as the Itô model
    # and the interaction grows only where the data ask for it. scIMF's randomly initialised block
    # adds an O(1) drift that f_intra must first learn to cancel: on the Morse control (no
    # interaction) that left scimf 0.05 above ito in held-out W1 at 200 s; zero_init puts it
    # within ito's spread, with equal or better W1 on OU, Morse and two species and their controls
    # (benchmarks/results/populations_scimf_zero_init_vs.md).
    cfg.model.inter.options["zero_init"] = True
    # No attention dropout: with it the fused attention falls back to its unfused path and draws a
    # mask as large as the scores (a scimf iteration 1.2-1.9x slower, results/iteration_speed.md), and
    # at equal iterations it makes no difference beyond seed spread on EMT, Bargaje or CITE
    # (benchmarks/results/gate_no_dropout.md).
    cfg.model.inter.options["dropout"] = 0.0
    if dim <= LOW_DIM_NO_LAYER_NORM:
        # The LayerNorm's shift β is also what gives scIMF's bias-free W_Q, W_K a score term of the
        # source alone, (W_Q β)ᵀ W_K x̂_j: without it the score is bilinear and two mirrored groups
        # of centred data cannot both attend to one of them (one-way influence is out of reach;
        # tests/unit/interactions/test_interactions.py). qk_bias puts that term back: on two species the cell-type
        # weights then show who drives whom in 3 seeds of 3, with a better held-out W1
        # (benchmarks/results/populations_scimf_qk_bias_600s.md).
        cfg.model.inter.options["layer_norm"] = False
        cfg.model.inter.options["qk_bias"] = True
    return cfg


def _kernel_preset(
    name: str, inter: Component, inter_lr: float | None = None, ema: float = 0.0, random_batch: int | None = None
):
    """``scimf`` with another interaction kernel (its own step size, averaging, random batch)."""

    def build(dim: int) -> Config:
        cfg = _scimf(dim)
        cfg.model.inter = Component(inter.name, dict(inter.options))
        cfg.train.inter_lr, cfg.train.ema, cfg.train.random_batch = inter_lr, ema, random_batch
        cfg.preset = name
        return cfg

    return build


@PRESETS.register("symmetric_qk")
def _symmetric_qk(dim: int) -> Config:
    cfg = _scimf(dim)
    cfg.model.inter.options["tie_qk"] = True
    # the ablation keeps tied, bias-free W_Q = W_K (at d <= 3 without the LayerNorm's shift either):
    # the measurements of it in benchmarks/results are of that kernel
    cfg.model.inter.options.pop("qk_bias", None)
    cfg.preset = "symmetric_qk"
    return cfg


PRESETS.register("ito", _kernel_preset("ito", Component("none")))
# rbf's A_m are force amplitudes too: at 1e-3 they barely move in 300 steps (Kuramoto ties ito, beats at 0.01)
PRESETS.register("rbf", _kernel_preset("rbf", Component("rbf", {"n_kernels": 3, "bandwidth": 1.0}), inter_lr=0.01))
# ψ's node values are forces in model units, O(1)–O(10) at short range; at lr = 1e-3 Adam moves them by ~0.3
# in 300 steps (populations_radial_lr); averaging the weights over ~50 steps takes out that step's noise: equal
# or better W1 and interaction error on OU, Morse, two species and controls (populations_radial_ema_all)
PRESETS.register(
    "radial", _kernel_preset("radial", Component("radial", {"basis": "linear", "n_basis": 32}), inter_lr=0.1, ema=0.98)
)
# an MLP on every pair costs O(N²·width²) per step: training in random groups of 16 (evaluation exact) gives
# 8× the iterations in the same time on Kuramoto, where it then beats ito (populations_kuramoto_pairwise_mlp_rb)
PRESETS.register(
    "pairwise_mlp",
    _kernel_preset("pairwise_mlp", Component("pairwise_mlp", {"width": 64, "depth": 2}), random_batch=16),
)


@PRESETS.register("scimf_paper")
def _scimf_paper(dim: int) -> Config:
    """scIMF's exact recipe (../shared/docs/scimf.md): no standardisation (σ = 0.1 and blur 0.1 in
    the data's own units, times as given), energy weight 1, all observed cells as targets."""
    cfg = Config(model=ModelConfig(dim=dim, standardize="none", time_scale="none"), preset="scimf_paper")
    cfg.loss.energy_weight = 1.0
    cfg.train.n_targets = None
    return cfg


def preset(name: str, dim: int = 50) -> Config:
    """The named preset for particles of dimension ``dim``: ``scimf`` (the paper's
    hyper-parameters, with f_inter ≡ 0 at initialisation, no attention dropout, and at d ≤ 3 a q/k
    bias in place of the LayerNorm), ``scimf_paper`` (the paper's exact recipe), ``ito`` (no
    interaction), ``symmetric_qk`` (W_Q = W_K), ``rbf``, ``radial`` (central forces with a learned
    profile ψ(r)), ``pairwise_mlp``. The attention presets use 2 heads where ``dim`` is even and 1
    head where it is odd (d_k = d / heads must be whole)."""
    cfg = PRESETS.get(name)(dim)  # KeyError listing the presets for an unknown name
    inter = cfg.model.inter
    if inter.name == "attention" and dim % int(inter.options.get("heads", 1)):
        # 2 heads need an even d: odd d (e.g. 1-D opinions) gets one head instead of an error
        inter.options["heads"] = 1
    cfg.validate()
    return cfg
