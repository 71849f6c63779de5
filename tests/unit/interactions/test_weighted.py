"""Weighted particles: every kernel's mean over sources counts source j w_j = exp(log_w_j) times
(a source of weight k acts as k copies of it), only differences of log_w matter, −inf removes a
source, ``log_w=None`` is the unweighted kernel, and gradients reach log_w."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import KERNEL_CASES, make_kernel
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mfsde.drifts import INTRA_DRIFTS, MeanFieldDrift, ZeroDrift
from mfsde.interactions import INTERACTIONS, Interaction, PairwiseInteraction, build_interaction
from mfsde.testing import check_interaction
from mfsde.testing.strategies import populations, row_blocks

ATOL, RTOL = 1e-10, 1e-8

#: every variant of conftest's KERNEL_CASES, plus any registered kernel they do not cover
CASES = KERNEL_CASES + [
    (name, name, {}) for name in INTERACTIONS.names() if name not in {case[1] for case in KERNEL_CASES}
]
IDS = [case[0] for case in CASES]
D = 4


def _kernel(case, **extra):
    _, name, options = case
    return make_kernel(name, D, **{**options, **extra})


def _log_w(draw, x, low=-4.0, high=4.0):
    """Random log-weights ``x.shape[:-1]`` in [low, high]."""
    return torch.from_numpy(draw(arrays(np.float64, tuple(x.shape[:-1]), elements=st.floats(low, high))).copy())


def _close(a, b, atol=ATOL, rtol=RTOL):
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


def test_every_in_tree_kernel_is_weighted():
    assert all(INTERACTIONS.get(name).weighted for name in INTERACTIONS.names())


# -- 1. no weights, equal weights, shifted weights -----------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=6)
@given(x=populations(min_n=1, max_n=5, dim=D), data=st.data(), shift=st.floats(-50, 50))
def test_equal_weights_are_no_weights_and_only_differences_matter(case, x, data, shift):
    k = _kernel(case)
    _close(k(x, log_w=torch.zeros(x.shape[:-1], dtype=x.dtype)), k(x), atol=1e-12, rtol=1e-10)
    _close(k(x, log_w=torch.full(x.shape[:-1], shift, dtype=x.dtype)), k(x), atol=1e-12, rtol=1e-10)
    log_w = _log_w(data.draw, x)
    _close(k(x, log_w=log_w + shift), k(x, log_w=log_w))
    if x.shape[-2] == 1:  # nobody to interact with, whatever the weights
        assert torch.equal(k(x, log_w=log_w), torch.zeros_like(x))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_weights_is_the_unweighted_call(case):
    """``log_w=None`` takes the unweighted code path: bit-identical to the call without it."""
    k = _kernel(case)
    x = torch.randn(2, 6, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(k(x, None, log_w=None), k(x))
    assert torch.equal(k.forward_rows(x, slice(1, 4), log_w=None), k.forward_rows(x, slice(1, 4)))
    if k.has_weights:
        assert torch.equal(k.pair_weights(x, log_w=None), k.pair_weights(x))


# -- 2. a weight is a multiplicity -----------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=8)
@given(x=populations(min_n=2, max_n=5, dim=D), data=st.data(), copies=st.integers(2, 4))
def test_a_source_of_weight_k_is_k_copies_of_it(case, x, data, copies):
    """The defining property: source j with weight k·w_j drives every other receiver exactly as
    k copies of j, each of weight w_j, do."""
    k = _kernel(case)
    n = x.shape[-2]
    j = data.draw(st.integers(0, n - 1))
    log_w = _log_w(data.draw, x, -2.0, 2.0)
    heavy = log_w.clone()
    heavy[..., j] += math.log(copies)
    x_dup = torch.cat([x, x[..., j : j + 1, :].expand(*x.shape[:-2], copies - 1, D)], dim=-2)
    log_w_dup = torch.cat([log_w, log_w[..., j : j + 1].expand(*x.shape[:-2], copies - 1)], dim=-1)
    others = [i for i in range(n) if i != j]
    _close(k(x, log_w=heavy)[..., others, :], k(x_dup, log_w=log_w_dup)[..., others, :])
    ones = torch.zeros(x_dup.shape[:-1], dtype=x.dtype)  # integer weights against the unweighted copies
    int_w = torch.zeros(x.shape[:-1], dtype=x.dtype)
    int_w[..., j] = math.log(copies)
    _close(k(x, log_w=int_w)[..., others, :], k(x_dup, log_w=ones)[..., others, :])
    _close(k(x, log_w=int_w)[..., others, :], k(x_dup)[..., others, :])


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=6)
@given(x=populations(min_n=2, max_n=5, dim=D), data=st.data())
def test_the_receivers_own_weight_does_not_enter(case, x, data):
    """f_i does not depend on log_w_i, however extreme (also through a residual/receiver path)."""
    k = _kernel(case)
    n = x.shape[-2]
    i = data.draw(st.integers(0, n - 1))
    log_w = _log_w(data.draw, x)
    out = k(x, log_w=log_w)
    for own in (-1e3, 1e3, float("-inf")):
        moved = log_w.clone()
        moved[..., i] = own
        _close(k(x, log_w=moved)[..., i, :], out[..., i, :])


# -- 3. permutations --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=6)
@given(x=populations(min_n=2, max_n=6, dim=D), data=st.data())
def test_permuting_particles_with_their_weights_permutes_the_output(case, x, data):
    k = _kernel(case)
    perm = torch.tensor(data.draw(st.permutations(range(x.shape[-2]))))
    log_w = _log_w(data.draw, x)
    _close(k(x[..., perm, :], log_w=log_w[..., perm]), k(x, log_w=log_w)[..., perm, :])


# -- 4. chunks and rows -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=6)
@given(x=populations(min_n=2, max_n=7, dim=D), data=st.data())
def test_chunks_and_rows_pass_the_weights_along(case, x, data):
    k = _kernel(case)
    n = x.shape[-2]
    log_w = _log_w(data.draw, x)
    full = k(x, log_w=log_w)
    rows = data.draw(row_blocks(n))
    _close(k.forward_rows(x, rows, log_w=log_w), full[..., rows, :])
    if hasattr(k, "chunk_size"):
        k.chunk_size = 2
        _close(k(x, log_w=log_w), full)
        _close(k.forward_rows(x, rows, log_w=log_w), full[..., rows, :])


@pytest.mark.parametrize("name", ["rbf", "pairwise_mlp", "radial", "attention"])
def test_checkpointed_chunks_give_the_same_gradients_for_the_weights(name):
    """With autograd, chunks are recomputed in backward: the weights must travel with them."""
    k = make_kernel(name, D)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, D, generator=g, dtype=torch.float64)
    log_w = torch.randn(2, 7, generator=g, dtype=torch.float64)
    grads = []
    for chunk in (None, 2):
        k.chunk_size = chunk
        lw = log_w.clone().requires_grad_(True)
        xg = x.clone().requires_grad_(True)
        k(xg, log_w=lw).pow(2).sum().backward()
        grads.append((lw.grad, xg.grad))
    _close(grads[1][0], grads[0][0])
    _close(grads[1][1], grads[0][1])


# -- 5. a weight of zero ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=6)
@given(x=populations(min_n=3, max_n=6, dim=D), data=st.data())
def test_a_source_of_weight_zero_is_removed(case, x, data):
    k = _kernel(case)
    n = x.shape[-2]
    j = data.draw(st.integers(0, n - 1))
    log_w = _log_w(data.draw, x)
    gone = log_w.clone()
    gone[..., j] = float("-inf")
    keep = [i for i in range(n) if i != j]
    _close(k(x, log_w=gone)[..., keep, :], k(x[..., keep, :], log_w=log_w[..., keep]))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_receiver_whose_sources_all_weigh_zero_is_alone(case):
    """Exact zeros, as for N = 1, with finite gradients for x and log_w."""
    k = _kernel(case)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, D, generator=g, dtype=torch.float64, requires_grad=True)
    log_w = torch.tensor([[0.0, -math.inf, -math.inf, -math.inf], [-math.inf] * 4], dtype=torch.float64)
    log_w.requires_grad_(True)
    out = k(x, log_w=log_w)
    assert torch.equal(out[0, 0], torch.zeros_like(out[0, 0]))  # 0's sources all weigh zero
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    if out.requires_grad:
        out.pow(2).sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(log_w.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["rbf", "pairwise_mlp", "attention"])
def test_extreme_weights_stay_finite(name, dtype):
    """Weights far apart (beyond exp's range) give the weighted mean, not 0/0: receiver 0, the
    heaviest, sees only light sources, whose mean does not depend on their common offset."""
    k = make_kernel(name, D).to(dtype)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, D, generator=g, dtype=torch.float64).to(dtype)
    log_w = torch.randn(5, generator=g, dtype=torch.float64).to(dtype)
    far = log_w.clone()
    far[0] += 1e4
    out = k(x, log_w=far)
    assert torch.isfinite(out).all()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out[0], k(x, log_w=log_w)[0], atol=tol, rtol=tol)


# -- 6. none ------------------------------------------------------------------------------------------
def test_none_returns_exact_zeros_with_weights():
    k = build_interaction("none", dim=3)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    log_w = torch.randn(2, 5, dtype=torch.float64)
    assert torch.equal(k(x, log_w=log_w), torch.zeros_like(x))
    assert torch.equal(k.forward_rows(x, slice(1, 3), log_w=log_w), torch.zeros_like(x[..., 1:3, :]))
    assert torch.equal(k.pair_weights(x, log_w=log_w), torch.zeros(2, 1, 5, 5, dtype=torch.float64))
    drift = MeanFieldDrift(ZeroDrift(3), k)
    assert torch.equal(drift(x, log_w=log_w), torch.zeros_like(x))
    with pytest.raises(ValueError, match="log_w"):
        drift(x, log_w=log_w[..., :-1])


# -- pair weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pair_weights_with_weights(case):
    k = _kernel(case)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, D, generator=g, dtype=torch.float64)
    log_w = torch.randn(2, 5, generator=g, dtype=torch.float64)
    plain = k.pair_weights(x)
    _close(k.pair_weights(x, log_w=torch.zeros(2, 5, dtype=torch.float64)), plain, atol=1e-12, rtol=1e-10)
    w = k.pair_weights(x, log_w=log_w)
    assert w.shape == plain.shape and torch.isfinite(w).all()
    _close(k.pair_weights(x, log_w=log_w + 7.0), w)
    assert torch.all(torch.diagonal(w, dim1=-2, dim2=-1) == 0)
    gone = log_w.clone()
    gone[:, 2] = float("-inf")
    assert torch.equal(k.pair_weights(x, log_w=gone)[..., 2], torch.zeros_like(w[..., 2]))  # no influence
    if isinstance(k, PairwiseInteraction) and type(k).pair_weights is PairwiseInteraction.pair_weights:
        share = torch.exp(log_w)[:, None, :] * (1 - torch.eye(5, dtype=torch.float64))
        share = share / share.sum(-1, keepdim=True)
        _close(w, plain * (5 - 1) * share.unsqueeze(-3))  # ‖φ‖ · w_j / Σ_{k≠i} w_k


@pytest.mark.parametrize("tie", [False, True])
def test_weighted_attention_probabilities_are_softmax_of_scores_plus_log_w(tie):
    k = make_kernel("attention", D, tie_qk=tie)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, D, generator=g, dtype=torch.float64)
    log_w = torch.randn(6, generator=g, dtype=torch.float64)
    e = torch.exp(k.scores(x)) * torch.exp(log_w) * (1 - torch.eye(6, dtype=torch.float64))
    _close(k.pair_weights(x, log_w=log_w), e / e.sum(-1, keepdim=True))


# -- 7. bad weights, kernels without weights ---------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_log_w_is_refused(case):
    k = _kernel(case)
    x = torch.randn(2, 4, D, dtype=torch.float64)
    good = torch.zeros(2, 4, dtype=torch.float64)
    for bad in (good[0], good[:, :3], good[..., None]):
        with pytest.raises(ValueError, match=r"log_w must have shape \(\.\.\., N\) = \(2, 4\)"):
            k(x, log_w=bad)
    for value in (math.nan, math.inf):
        bad = good.clone()
        bad[1, 2] = value
        with pytest.raises(ValueError, match="log_w .* must be finite or -inf"):
            k(x, log_w=bad)
        with pytest.raises(ValueError, match="log_w"):
            k.forward_rows(x, slice(0, 2), log_w=bad)
        if k.has_weights:
            with pytest.raises(ValueError, match="log_w"):
                k.pair_weights(x, log_w=bad)
    with pytest.raises(TypeError, match="log_w must be a floating-point tensor"):
        k(x, log_w=torch.zeros(2, 4, dtype=torch.long))


class _Unweighted(Interaction):
    """A third-party kernel from before weights: ``forward_rows`` without ``log_w``."""

    def forward_rows(self, x, rows, t=None):
        return torch.zeros_like(x[..., rows, :]) + x.mean(-2, keepdim=True)


class _OwnBlock(PairwiseInteraction):
    """A fast ``_block`` without ``log_w``: the inherited weighted path would not reach it."""

    def phi(self, x_i, dx):
        return dx

    def _block(self, x, start, stop):
        return super()._block(x, start, stop)


class _PhiOnly(PairwiseInteraction):
    def phi(self, x_i, dx):
        return torch.tanh(dx)


class _IgnoresWeights(PairwiseInteraction):
    """Broken on purpose: declares weights but averages as if they were equal."""

    def phi(self, x_i, dx):
        return torch.tanh(dx)

    def _block(self, x, start, stop, log_w=None):
        out = super()._block(x, start, stop)
        return out if log_w is None else out / (x.shape[-2] - 1)


def test_the_contract_check_catches_a_kernel_that_ignores_its_weights():
    assert "weighted" in check_interaction(_PhiOnly(3))
    with pytest.raises(AssertionError, match="weighted"):
        check_interaction(_IgnoresWeights(3))


def test_a_pairwise_kernel_that_writes_only_phi_is_weighted():
    assert _PhiOnly.weighted and Interaction.weighted is False and PairwiseInteraction.weighted is True
    x = torch.randn(5, 3, dtype=torch.float64)
    drift = MeanFieldDrift(ZeroDrift(3), _PhiOnly(3))
    _close(drift(x, log_w=torch.zeros(5, dtype=torch.float64)), _PhiOnly(3)(x), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("cls", [_Unweighted, _OwnBlock])
def test_kernels_that_do_not_accept_weights_are_not_weighted(cls):
    assert not cls.weighted
    kernel = cls(3)
    x = torch.randn(5, 3, dtype=torch.float64)
    log_w = torch.zeros(5, dtype=torch.float64)
    drift = MeanFieldDrift(ZeroDrift(3), kernel)
    torch.testing.assert_close(drift(x), kernel(x))  # without weights: called as before
    torch.testing.assert_close(drift.parts(x)["inter"], kernel(x))
    refused = rf"^{cls.__name__} does not accept particle weights \(log_w\)"
    with pytest.raises(ValueError, match=refused):
        drift(x, log_w=log_w)
    with pytest.raises(ValueError, match=refused):
        drift.parts(x, log_w=log_w)
    with pytest.raises(ValueError, match=refused):
        kernel(x, log_w=log_w)


def test_mean_field_drift_passes_the_weights_to_the_interaction_only():
    torch.manual_seed(0)
    inter = make_kernel("rbf", D)
    drift = MeanFieldDrift(INTRA_DRIFTS.build("mlp", dim=D), inter).double()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 5, D, generator=g, dtype=torch.float64)
    log_w = torch.randn(2, 5, generator=g, dtype=torch.float64)
    parts = drift.parts(x, log_w=log_w)
    _close(parts["intra"], drift.intra(x))
    _close(parts["inter"], inter(x, log_w=log_w))
    _close(drift(x, log_w=log_w), parts["total"])
    assert torch.equal(drift(x), drift.intra(x) + inter(x))


# -- 8. gradients reach the weights ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options",
    [
        ("rbf", {}),
        ("pairwise_mlp", {"width": 4}),
        ("attention", {}),
        ("attention", {"chunk_size": 2, "receiver": True}),
    ],
    ids=["rbf", "pairwise_mlp", "attention", "attention-chunked-receiver"],
)
def test_gradcheck_with_respect_to_log_w(name, options):
    k = make_kernel(name, 2, **options)
    assert not k.training
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 2, generator=g, dtype=torch.float64)
    log_w = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda lw: k(x, log_w=lw), (log_w,))
    if name != "attention":
        assert torch.autograd.gradcheck(lambda lw: k.pair_weights(x, log_w=lw), (log_w,))
