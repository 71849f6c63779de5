"""Shared fixtures and helpers for mfsde's tests.

``tests/unit/<namespace>/`` mirrors the package (one folder per namespace: interactions,
solvers, losses, config, data, datasets, training, evaluation, explain, systems; ``growth``: the
mass channel across them); the tests under ``tests/integration/`` drive several parts at once
(the CLI, whole fits, the docs' snippets, the scverse path, runs that survive faults, processes) and are marked
``integration``: ``pytest -m "not integration"`` runs the unit tests alone.

Kept cheap on purpose (2 shared CPU cores): small populations, float64 where exactness is
checked, hypothesis with few examples and no deadline.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, settings
from torch import nn

import mfsde
from mfsde.interactions import INTERACTIONS

settings.register_profile(
    "mfsde",
    deadline=None,
    max_examples=20,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("mfsde")

# Few threads: the machine is shared, and tiny problems gain nothing from more.
torch.set_num_threads(1)


# -- kernels under test ------------------------------------------------------------------------
#: (id, registry name, options) of every interaction variant the tests cover.
KERNEL_CASES = [
    ("attention-code", "attention", {"style": "code"}),
    ("attention-paper", "attention", {"style": "paper"}),
    ("attention-tie_qk", "attention", {"tie_qk": True}),
    ("attention-residual", "attention", {"residual": True}),
    ("attention-qk_bias", "attention", {"qk_bias": True}),
    ("attention-receiver", "attention", {"receiver": True, "qk_bias": True}),
    ("rbf", "rbf", {}),
    ("rbf-scalar", "rbf", {"scalar_force": True}),
    ("pairwise_mlp", "pairwise_mlp", {"width": 8}),
    ("pairwise_mlp-relative", "pairwise_mlp", {"width": 8, "relative": True}),
    ("radial", "radial", {"width": 8}),
    ("radial-linear", "radial", {"basis": "linear", "n_basis": 6}),
    ("none", "none", {}),
]
KERNEL_IDS = [c[0] for c in KERNEL_CASES]


def heads_for(dim: int) -> int:
    return 2 if dim % 2 == 0 else 1


def randomize_(module: nn.Module, seed: int = 0, scale: float = 0.5) -> nn.Module:
    """Overwrite every parameter with N(0, scale²) draws (non-trivial outputs: e.g. the RBF's
    scalar amplitudes start at zero, LayerNorm at the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def make_kernel(name: str, dim: int, seed: int = 0, **options) -> nn.Module:
    """A float64, eval-mode (dropout off) kernel with random parameters."""
    if name == "attention":
        options.setdefault("heads", heads_for(dim))
    torch.manual_seed(seed)
    kernel = INTERACTIONS.build(name, dim=dim, **options).double().eval()
    return randomize_(kernel, seed)


# -- naive per-pair reference implementations (loops over j ≠ i) ------------------------------
def _layer_norm(mod: nn.Module, z: torch.Tensor) -> torch.Tensor:
    if isinstance(mod, nn.LayerNorm):
        return F.layer_norm(z, mod.normalized_shape, mod.weight, mod.bias, mod.eps)
    return z


def _linear(mod: nn.Linear, z: torch.Tensor) -> torch.Tensor:
    out = mod.weight @ z
    return out if mod.bias is None else out + mod.bias


def _mlp(layers, z: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        z = _linear(layer, z) if isinstance(layer, nn.Linear) else F.leaky_relu(z, 0.01)
    return z


def attention_loop(k, x: torch.Tensor):
    """Reference scIMF attention block for one population ``x`` (N, d), written as loops:
    per head a softmax over j ≠ i of q_i·k_j/√d_k, weighted sum of v_j, concat, [W_O], FFN."""
    n, d = x.shape
    e = d // k.heads
    xqk = torch.stack([_layer_norm(k.norm_qk, x[i]) for i in range(n)])
    xv = torch.stack([_layer_norm(k.norm_v, x[i]) for i in range(n)])
    wq, wk, wv = k.w_q.weight, k.w_k.weight, k.w_v.weight
    bq = k.w_q.bias if k.w_q.bias is not None else torch.zeros(d, dtype=x.dtype)
    bk = k.w_k.bias if k.w_k.bias is not None else torch.zeros(d, dtype=x.dtype)
    out = torch.zeros_like(x)
    weights = torch.zeros(k.heads, n, n, dtype=x.dtype)
    for i in range(n):
        h_i = []
        others = [j for j in range(n) if j != i]
        for h in range(k.heads):
            rows = slice(h * e, (h + 1) * e)
            q = wq[rows] @ xqk[i] + bq[rows]
            s = torch.stack([(q * (wk[rows] @ xqk[j] + bk[rows])).sum() / math.sqrt(e) for j in others])
            w = torch.softmax(s, dim=0)
            for a, j in enumerate(others):
                weights[h, i, j] = w[a]
            h_i.append(sum(w[a] * (wv[rows] @ xv[j]) for a, j in enumerate(others)))
        z = torch.cat(h_i)
        if k.use_out_proj:
            z = _linear(k.w_o, z)
        if k.residual:
            z = z + x[i]
            out[i] = z + _mlp(k.ffn, _layer_norm(k.norm_ffn, z))
        elif getattr(k, "receiver", False):  # FFN([h_i, x_i])
            out[i] = _mlp(k.ffn, torch.cat([_layer_norm(k.norm_ffn, z), x[i]]))
        else:
            out[i] = _mlp(k.ffn, _layer_norm(k.norm_ffn, z))
    return out, weights


def rbf_loop(k, x: torch.Tensor):
    """f_i = 1/(N−1) Σ_{j≠i} Σ_m exp(−‖x_j − x_i‖²/(2h_m²)) A_m (x_j − x_i)."""
    n, d = x.shape
    hs = k.log_bandwidth.exp()
    out = torch.zeros_like(x)
    weights = torch.zeros(k.n_kernels, n, n, dtype=x.dtype)
    for i in range(n):
        acc = torch.zeros(d, dtype=x.dtype)
        for j in range(n):
            if j == i:
                continue
            r = x[j] - x[i]
            for m in range(k.n_kernels):
                kv = torch.exp(-(r @ r) / (2 * hs[m] ** 2))
                weights[m, i, j] = kv
                force = k.amplitude[m] * r if k.scalar_force else k.amplitude[m] @ r
                acc = acc + kv * force
        out[i] = acc / (n - 1)
    return out, weights


def _pair_loop(x: torch.Tensor, message):
    """f_i = 1/(N−1) Σ_{j≠i} message(i, j) and the weights ‖message(i, j)‖ / (N − 1), by loops."""
    n, d = x.shape
    out = torch.zeros_like(x)
    weights = torch.zeros(1, n, n, dtype=x.dtype)
    for i in range(n):
        acc = torch.zeros(d, dtype=x.dtype)
        for j in range(n):
            if j != i:
                msg = message(i, j)
                weights[0, i, j] = msg.norm() / (n - 1)
                acc = acc + msg
        out[i] = acc / (n - 1)
    return out, weights


def pairwise_loop(k, x: torch.Tensor):
    """f_i = 1/(N−1) Σ_{j≠i} φ([x_i, x_j − x_i]) (or φ(x_j − x_i) when relative)."""
    w_rel, b = k.first_rel.weight, k.first_rel.bias

    def message(i, j):
        if k.relative:
            h = w_rel @ (x[j] - x[i]) + b
        else:
            w = torch.cat([k.first_self.weight, w_rel], dim=1)
            h = w @ torch.cat([x[i], x[j] - x[i]]) + b
        return _mlp(k.rest, h)

    return _pair_loop(x, message)


def radial_loop(k, x: torch.Tensor):
    """f_i = 1/(N−1) Σ_{j≠i} ψ(r_ij) (x_j − x_i)/r_ij; the piecewise-linear ψ as a sum of hat
    functions Σ_m w_m max(0, 1 − |u (M−1) − m|), u = r/(1 + r) (an independent form)."""

    def message(i, j):
        dx = x[j] - x[i]
        r = torch.sqrt(dx @ dx + k.eps**2)
        if k.basis == "mlp":
            psi = k.psi(r.reshape(1, 1))[0, 0]
        else:
            s = r / (1 + r) * (k.n_basis - 1)
            psi = sum(k.nodes[m] * torch.clamp(1 - (s - m).abs(), min=0) for m in range(k.n_basis))
        return psi * dx / r

    return _pair_loop(x, message)


def none_loop(k, x: torch.Tensor):
    n = x.shape[0]
    return torch.zeros_like(x), torch.zeros(1, n, n, dtype=x.dtype)


LOOPS = {
    "attention": attention_loop,
    "rbf": rbf_loop,
    "pairwise_mlp": pairwise_loop,
    "radial": radial_loop,
    "none": none_loop,
}


def reference(name: str, k, x: torch.Tensor):
    """Apply the loop reference population by population over any leading dims."""
    lead = x.shape[:-2]
    flat = x.reshape(-1, *x.shape[-2:])
    outs, ws = zip(*(LOOPS[name](k, p) for p in flat))
    out = torch.stack(outs).reshape(x.shape)
    w = torch.stack(ws)
    return out, w.reshape(*lead, *w.shape[1:])


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def registry_cleanup():
    """Remove names a test registers in the global registries, whatever happens."""
    from mfsde.config import PRESETS
    from mfsde.drifts import INTRA_DRIFTS
    from mfsde.losses import LOSSES
    from mfsde.solvers import SOLVERS

    regs = (INTERACTIONS, INTRA_DRIFTS, LOSSES, SOLVERS, PRESETS)
    before = [dict(r._table) for r in regs]
    yield
    for r, table in zip(regs, before):
        r._table.clear()
        r._table.update(table)


def small_drift(dim: int = 2, inter: str = "attention", seed: int = 0, width: int = 8, **options):
    """A float64 eval-mode MeanFieldDrift (MLP intra + a kernel) with random parameters."""
    intra = randomize_(mfsde.drifts.build_intra("mlp", dim=dim, width=width).double(), seed + 100, 0.3)
    if inter == "pairwise_mlp":
        options.setdefault("width", 8)
    inter_k = make_kernel(inter, dim, seed=seed, **options)
    return mfsde.drifts.MeanFieldDrift(intra, inter_k).double().eval()


#: the repository root
REPO = Path(__file__).resolve().parent.parent
_INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _INTEGRATION in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def load_benchmark(name: str, module_name: str | None = None):
    """The script ``benchmarks/<name>.py`` imported as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        module_name or f"_benchmark_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
