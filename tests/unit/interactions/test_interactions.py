"""Interaction kernels: masking, permutation equivariance, symmetry, agreement with naive
per-pair loops, chunking, N = 1, bad input."""

from __future__ import annotations

import pytest
import torch
from conftest import KERNEL_CASES, KERNEL_IDS, make_kernel, randomize_, reference
from hypothesis import given, settings
from hypothesis import strategies as st

import mfsde
from mfsde.interactions import INTERACTIONS, AttentionInteraction, PairwiseInteraction, build_interaction
from mfsde.testing import check_interaction
from mfsde.testing.strategies import kernels, populations, row_blocks

ATOL, RTOL = 1e-10, 1e-8


def _perm_x(x, perm):
    return x[..., perm, :]


def _perm_w(w, perm):
    return w[..., perm, :][..., :, perm]


# -- masking -----------------------------------------------------------------------------------
@settings(max_examples=15)
@given(x=populations(), style=st.sampled_from(["code", "paper"]), tie=st.booleans())
def test_attention_pair_weights_zero_diagonal_rows_sum_to_one(x, style, tie):
    k = make_kernel("attention", x.shape[-1], style=style, tie_qk=tie)
    w = k.pair_weights(x)
    n = x.shape[-2]
    assert w.shape == (*x.shape[:-2], k.heads, n, n)
    assert torch.all(torch.diagonal(w, dim1=-2, dim2=-1) == 0)
    assert torch.all(w >= 0)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("style", ["code", "paper"])
def test_attention_with_zero_wq_ignores_own_state(style):
    """With W_Q = 0 every receiver attends uniformly to j ≠ i, so f_inter(x)_i must not depend
    on x_i at all (x_i is never a source)."""
    d, n = 4, 5
    k = make_kernel("attention", d, style=style, dropout=0.3)
    assert not k.training  # eval mode: dropout off
    with torch.no_grad():
        k.w_q.weight.zero_()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, n, d, generator=g, dtype=torch.float64)
    base = k(x)
    for i in range(n):
        moved = x.clone()
        moved[..., i, :] += 3.0 * torch.randn(2, d, generator=g, dtype=torch.float64)
        out = k(moved)
        torch.testing.assert_close(out[..., i, :], base[..., i, :], atol=1e-12, rtol=0)
        others = [j for j in range(n) if j != i]
        assert not torch.allclose(out[..., others, :], base[..., others, :])  # x_i is a source for them


@pytest.mark.parametrize("style", ["code", "paper"])
def test_attention_with_queries_depends_on_own_state(style):
    """Contrast: with W_Q ≠ 0, x_i changes its own attention pattern (as the receiver)."""
    k = make_kernel("attention", 4, style=style)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    moved = x.clone()
    moved[0] += torch.tensor([1.0, -0.5, 0.0, 2.0], dtype=torch.float64)  # not along (1, …, 1): LayerNorm
    assert not torch.allclose(k(moved)[0], k(x)[0])


def test_attention_dropout_only_in_training_mode():
    k = make_kernel("attention", 4, dropout=0.5)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(k(x), k(x), atol=0, rtol=0)
    k.train()
    torch.manual_seed(0)
    a = k(x)
    assert not torch.allclose(a, k.eval()(x))


# -- permutation equivariance -------------------------------------------------------------------
@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
@settings(max_examples=10)
@given(data=st.data())
def test_every_kernel_is_permutation_equivariant(case, data):
    _, name, options = case
    x = data.draw(populations(max_n=7))
    perm = torch.tensor(data.draw(st.permutations(range(x.shape[-2]))))
    k = make_kernel(name, x.shape[-1], **options)
    assert k.equivariant
    torch.testing.assert_close(k(_perm_x(x, perm)), _perm_x(k(x), perm), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(k.pair_weights(_perm_x(x, perm)), _perm_w(k.pair_weights(x), perm), atol=ATOL, rtol=RTOL)


# -- symmetry ------------------------------------------------------------------------------------
@settings(max_examples=10)
@given(x=populations(min_n=3), bias=st.booleans())
def test_tied_qk_scores_symmetric_untied_not(x, bias):
    d = x.shape[-1]
    tied = make_kernel("attention", d, tie_qk=True, qk_bias=bias)
    assert tied.symmetric and tied.w_k is tied.w_q
    s = tied.scores(x)
    torch.testing.assert_close(s, s.transpose(-1, -2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("style", ["code", "paper"])
def test_untied_scores_are_asymmetric(style):
    k = make_kernel("attention", 4, style=style)
    assert not k.symmetric
    x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    s = k.scores(x)
    assert (s - s.transpose(-1, -2)).abs().max() > 1e-2


def _two_mirrored_groups(d: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n cells at u and n at −u (two groups of a centred data set), u random: ``(2n, d)``, and
    the labels (True: group B)."""
    u = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.cat([u.expand(n, d), -u.expand(n, d)]), torch.cat([torch.zeros(n), torch.ones(n)]).bool()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(2, 6))
def test_bilinear_scores_tie_the_preferences_of_two_mirrored_groups(seed, d):
    """Without a bias the score is x_iᵀ M x_j: on two mirrored groups, group A's preference for B
    over A equals group B's preference for A over B, so "A follows B, B ignores A" (one-way) is out
    of reach of scIMF's attention (the docstring of ``qk_bias``)."""
    k = make_kernel("attention", d, seed=seed, layer_norm=False)
    x, b = _two_mirrored_groups(d, 4, seed)
    with torch.no_grad():
        s = k.scores(x)  # (H, N, N)
    a_prefers_b = s[:, ~b][:, :, b].mean((-1, -2)) - s[:, ~b][:, :, ~b].mean((-1, -2))
    b_prefers_a = s[:, b][:, :, ~b].mean((-1, -2)) - s[:, b][:, :, b].mean((-1, -2))
    torch.testing.assert_close(a_prefers_b, b_prefers_a, atol=1e-9 * (1 + float(s.abs().max())), rtol=0)


def test_qk_bias_lets_both_groups_attend_to_one():
    """With ``qk_bias`` a source-only score b_Qᵀ W_K x_j exists: both groups can attend to B."""
    d = 3
    x, b = _two_mirrored_groups(d, 4, 0)
    u_b = x[b].mean(0)
    for bias, expected in ((True, True), (False, False)):
        k = make_kernel("attention", d, heads=1, layer_norm=False, qk_bias=bias)
        with torch.no_grad():
            k.w_q.weight.zero_()  # scores from the bias alone (or nothing at all without it)
            if bias:
                k.w_q.bias.copy_(torch.ones(d, dtype=k.w_q.bias.dtype))
                k.w_k.bias.zero_()
            k.w_k.weight.copy_(20.0 * torch.outer(torch.ones(d, dtype=x.dtype), u_b) / u_b.dot(u_b))
        w = k.pair_weights(x)[0]  # (N, N)
        on_b = w[:, b].sum(-1)  # each receiver's attention to the B's
        assert bool((on_b > 0.99).all()) is expected, (bias, on_b)


def test_layer_norm_shift_gives_bias_free_attention_a_source_term():
    """With scIMF's LayerNorm, LN(x) = x̂ + β, and β acts as a bias of W_Q and W_K: both mirrored
    groups can attend to B without qk_bias (why the presets add the bias only where they leave
    the LayerNorm out, d <= 3)."""
    d = 4
    x, b = _two_mirrored_groups(d, 4, 1)
    k = make_kernel("attention", d, heads=1, layer_norm=True, qk_bias=False)
    assert k.w_q.bias is None and k.w_k.bias is None
    z_b = torch.nn.functional.layer_norm(x[b][0], (d,))  # x̂ of the B's; the A's have −z_b
    beta = torch.randn(d, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    beta = beta - beta.dot(z_b) / z_b.dot(z_b) * z_b  # β ⟂ x̂: queries see β only
    e1 = torch.zeros(d, dtype=x.dtype)
    e1[0] = 1.0
    with torch.no_grad():
        k.norm_qk.weight.fill_(1.0)
        k.norm_qk.bias.copy_(beta)
        k.w_q.weight.copy_(torch.outer(e1, beta) / beta.dot(beta))  # q_i = e1 for every cell
        k.w_k.weight.copy_(20.0 * torch.outer(e1, z_b) / z_b.dot(z_b))  # k_j = ±20 e1: + for the B's
        on_b = k.pair_weights(x)[0][:, b].sum(-1)
        assert bool((on_b > 0.99).all()), on_b
        k.norm_qk.bias.zero_()  # without the shift the queries vanish: uniform attention
        uniform = torch.where(b, 3 / 7, 4 / 7).to(on_b.dtype)  # 4 (3) B's among an A's (a B's) 7 others
        torch.testing.assert_close(k.pair_weights(x)[0][:, b].sum(-1), uniform)


@settings(max_examples=10)
@given(x=populations(min_n=2))
def test_rbf_pair_weights_symmetric(x):
    for scalar in (False, True):
        k = make_kernel("rbf", x.shape[-1], scalar_force=scalar)
        assert k.symmetric
        w = k.pair_weights(x)
        assert w.shape == (*x.shape[:-2], k.n_kernels, x.shape[-2], x.shape[-2])
        torch.testing.assert_close(w, w.transpose(-1, -2), atol=1e-14, rtol=0)
        assert torch.all(torch.diagonal(w, dim1=-2, dim2=-1) == 0)


def test_rbf_scalar_force_is_newtonian():
    """a_m I amplitudes: f_{i←j} = −f_{j←i}, so the (N−1)-scaled forces sum to zero."""
    k = make_kernel("rbf", 3, scalar_force=True)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(k(x).sum(-2), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_radial_is_newtonian_rotation_equivariant_and_starts_at_zero():
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert not build_interaction("radial", dim=3).double()(x).any()  # zero_init: the Itô model
    k = make_kernel("radial", 3)
    f = k(x)
    assert f.abs().max() > 1e-3
    torch.testing.assert_close(f.sum(-2), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    torch.testing.assert_close(k(x @ q.T), f @ q.T, atol=1e-10, rtol=0)


def test_radial_with_the_morse_profile_is_the_morse_interaction():
    """ψ(r) = W'(r) gives exactly the Morse system's forces (up to its 1/N vs our 1/(N−1))."""
    from mfsde.systems import MorseInteraction

    true = MorseInteraction(2, C_a=10.0, l_a=2.0, C_r=15.0, l_r=0.5)
    k = make_kernel("radial", 2)

    class MorseProfile(torch.nn.Module):
        def forward(self, r):
            return true.dW(r)

    k.psi = MorseProfile()
    x = 3 * torch.randn(9, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(k(x) * 8 / 9, true(x), atol=1e-9, rtol=1e-6)


def test_radial_linear_profile_interpolates_its_nodes_and_converges_to_the_morse_forces():
    """ψ equals the node values at the nodes u_m = m/(M−1) (u = r/(1+r)), is linear in u between
    them, and with the nodes set to W' the forces approach the Morse system's as M grows."""
    from mfsde.systems import MorseInteraction

    k = make_kernel("radial", 2, basis="linear", n_basis=9)
    u = torch.linspace(0, 1, 9, dtype=torch.float64)[:-1]
    torch.testing.assert_close(k.profile(u / (1 - u)), k.nodes[:-1], atol=1e-12, rtol=0)
    mid = (u[:-1] + u[1:]) / 2
    torch.testing.assert_close(k.profile(mid / (1 - mid)), (k.nodes[:-2] + k.nodes[1:-1]) / 2, atol=1e-12, rtol=0)
    assert torch.isclose(k.profile(torch.tensor(1e9, dtype=torch.float64)), k.nodes[-1], atol=1e-6)

    true = MorseInteraction(2, C_a=10.0, l_a=2.0, C_r=15.0, l_r=0.5)
    x = 3 * torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errors = []
    for m in (8, 32, 128):
        k = build_interaction("radial", dim=2, basis="linear", n_basis=m).double()
        nodes = torch.linspace(0, 1, m, dtype=torch.float64).clamp(max=1 - 1e-9)
        with torch.no_grad():
            k.nodes.copy_(true.dW(nodes / (1 - nodes)))
        with torch.no_grad():
            f, t = k(x) * 39 / 40, true(x)
        errors.append(float((f - t).pow(2).sum() / t.pow(2).sum()))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3, errors


@pytest.mark.parametrize(
    "options, match",
    [
        ({"basis": "spline"}, "basis must be one of"),
        ({"basis": "linear", "n_basis": 1}, "n_basis must be >= 2"),
        ({"basis": "linear", "n_basis": 0}, "n_basis"),
        ({"basis": "linear", "width": 8}, "width applies to radial's other"),
        ({"n_basis": 8}, "n_basis applies to radial's other"),
    ],
)
def test_radial_bad_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        build_interaction("radial", dim=2, **options)


def test_radial_linear_starts_at_zero_and_trains():
    x = torch.randn(2, 9, 3, generator=torch.Generator().manual_seed(1))
    k = build_interaction("radial", dim=3, basis="linear")
    out = k(x)
    assert not out.any()
    (out * torch.randn_like(out)).sum().backward()
    assert k.nodes.grad.abs().sum() > 0  # the zero profile still receives gradients


# -- vectorised / chunked == naive loop ---------------------------------------------------------
@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
@settings(max_examples=8)
@given(data=st.data())
def test_kernel_matches_naive_pair_loop(case, data):
    _, name, options = case
    x = data.draw(populations(max_n=5, max_d=4))
    chunk = data.draw(st.sampled_from([None, 1, 2, 3]))
    if name != "none":
        options = {**options, "chunk_size": chunk}
    k = make_kernel(name, x.shape[-1], **options)
    want, want_w = reference(name, k, x)
    torch.testing.assert_close(k(x), want, atol=ATOL, rtol=RTOL)
    got_w = k.pair_weights(x)
    if name == "none":
        assert torch.all(got_w == 0)
    else:
        torch.testing.assert_close(got_w, want_w, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize(
    "case", [c for c in KERNEL_CASES if c[1] != "none"], ids=[i for i in KERNEL_IDS if i != "none"]
)
def test_chunk_sizes_agree(case):
    _, name, options = case
    x = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    outs = []
    for chunk in (1, 2, 4, None):
        k = make_kernel(name, 4, **options, chunk_size=chunk)
        outs.append(k(x))
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=1e-12, rtol=1e-10)


# -- N = 1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
@pytest.mark.parametrize("lead", [(), (3,)])
def test_single_particle_gives_zeros_and_finite_gradients(case, lead):
    _, name, options = case
    d = 4
    k = make_kernel(name, d, **options)
    x = torch.randn(*lead, 1, d, dtype=torch.float64, requires_grad=True)
    out = k(x)
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out))
    w = k.pair_weights(x)
    assert torch.isfinite(w).all() and torch.all(w == 0)
    intra = mfsde.drifts.build_intra("mlp", dim=d, width=8).double()
    drift = mfsde.drifts.MeanFieldDrift(intra, k)
    drift(x).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()
    for p in drift.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
def test_coincident_particles_finite_gradients(case):
    """Two particles at the same place (r = 0): no NaN in values or gradients."""
    _, name, options = case
    k = make_kernel(name, 2, **options)
    x = torch.tensor([[0.5, -1.0], [0.5, -1.0], [2.0, 0.0]], dtype=torch.float64, requires_grad=True)
    out = k(x)
    (out.pow(2).sum() + x.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    for p in k.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


# -- registry, properties, bad input ------------------------------------------------------------
@pytest.mark.parametrize("name", INTERACTIONS.names())
def test_every_registered_kernel_passes_the_contract(name):
    """mfsde.testing.check_interaction over the registry (defaults, random parameters)."""
    k = randomize_(build_interaction(name, dim=4), seed=1, scale=0.3)
    ran = check_interaction(k)
    assert {"shape", "batch", "single_particle", "rows", "equivariant"} <= set(ran)
    if isinstance(k, PairwiseInteraction):
        assert "reference" in ran  # the fast path equals the plain loop over phi
    assert isinstance(build_interaction("attention", dim=4, heads=2), AttentionInteraction)


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("name", INTERACTIONS.names())
def test_the_contract_check_works_for_small_populations(name, n):
    k = randomize_(build_interaction(name, dim=4), seed=2, scale=0.3)
    assert {"shape", "batch", "single_particle", "rows"} <= set(check_interaction(k, n=n))
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        check_interaction(k, n=1)


@pytest.mark.parametrize("style", ["code", "paper"])
def test_attention_receiver_feeds_the_receiver_to_the_ffn(style):
    """With W_V = 0 every attended value is 0: scIMF's block then gives every particle the same
    output FFN(0) (x_i reaches it only through its weights); with ``receiver`` the output is
    FFN([0, x_i]), a function of the receiver, still zero for N = 1 and never of x_i as a source."""
    d, n = 4, 5
    x = torch.randn(2, n, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    plain, recv = make_kernel("attention", d, style=style), make_kernel("attention", d, style=style, receiver=True)
    for k in (plain, recv):
        with torch.no_grad():
            k.w_v.weight.zero_()
    same = plain(x)
    torch.testing.assert_close(same, same[..., :1, :].expand_as(same), atol=1e-12, rtol=0)
    out = recv(x)
    assert not torch.allclose(out, out[..., :1, :].expand_as(out))
    with torch.no_grad():
        zero_h = recv.norm_ffn(recv.w_o(torch.zeros(2, n, d, dtype=torch.float64)))  # W_O: "paper"
        torch.testing.assert_close(out, recv.ffn(torch.cat([zero_h, x], -1)), atol=1e-12, rtol=0)
    assert recv.self_excluding and torch.equal(recv(x[:, :1]), torch.zeros_like(x[:, :1]))
    with pytest.raises(ValueError, match="receiver=True and residual=True both feed x_i"):
        make_kernel("attention", d, receiver=True, residual=True)


def test_residual_attention_is_not_self_excluding():
    assert make_kernel("attention", 4).self_excluding
    assert not make_kernel("attention", 4, residual=True).self_excluding


@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
def test_bad_population_input(case):
    _, name, options = case
    k = make_kernel(name, 3, **options)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., N, d\)"):
        k(torch.randn(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x has d = 2 .* built for d = 3"):
        k(torch.randn(4, 2, dtype=torch.float64))
    bad = torch.randn(4, 3, dtype=torch.float64)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x contains 1 NaN/Inf"):
        k(bad)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"x contains 1 NaN/Inf"):
        k(bad)
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor"):
        k(torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        k([[0.0, 1.0, 2.0]])


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("attention", {"heads": 3}, "heads must be a positive int dividing dim=4"),
        ("attention", {"dropout": 1.0}, "dropout must be in"),
        ("attention", {"style": "paperish"}, "style must be one of"),
        ("attention", {"chunk_size": 0}, "chunk_size must be a positive int"),
        ("rbf", {"n_kernels": 0}, "n_kernels must be a positive int"),
        ("rbf", {"bandwidth": 0.0}, "bandwidth must be > 0"),
        ("pairwise_mlp", {"width": 0}, "width must be a positive int"),
        ("pairwise_mlp", {"depth": 0}, "depth must be a positive int"),
    ],
)
def test_bad_kernel_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        build_interaction(name, dim=4, **options)


def test_unknown_kernel_name_and_option():
    with pytest.raises(
        KeyError, match=r"unknown interaction 'transformer'; available: " + ", ".join(INTERACTIONS.names())
    ):
        build_interaction("transformer", dim=4)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['head'\]; accepted: .*'heads'"):
        build_interaction("attention", dim=4, head=2)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        build_interaction("rbf", dim=0)


# -- receiver rows and bounded memory ------------------------------------------------------------
@pytest.mark.parametrize("case", KERNEL_CASES, ids=KERNEL_IDS)
def test_forward_rows_equals_forward_slice(case):
    _, name, options = case
    x = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    k = make_kernel(name, 4, **options, **({} if name == "none" else {"chunk_size": 2}))
    full = k(x)
    for rows in (slice(0, 9), slice(0, 1), slice(3, 8), slice(8, 9), slice(5, None)):
        torch.testing.assert_close(k.forward_rows(x, rows), full[..., rows, :], atol=1e-12, rtol=1e-10)
    with pytest.raises(ValueError, match="selects no particle"):
        k.forward_rows(x, slice(4, 4))
    with pytest.raises(TypeError, match="contiguous slice"):
        k.forward_rows(x, slice(0, 9, 2))
    with pytest.raises(ValueError, match=r"stop = 20 is outside the population of N = 9"):
        k.forward_rows(x, slice(3, 20))  # never silently clipped to fewer rows
    torch.testing.assert_close(k.forward_rows(x, slice(-3, None)), full[..., 6:, :], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(
    "case", [c for c in KERNEL_CASES if c[1] != "none"], ids=[i for i in KERNEL_IDS if i != "none"]
)
def test_chunked_backward_keeps_no_pairwise_tensor(case):
    """With several query blocks and autograd on, each block is recomputed in backward: the
    graph holds O(N) per block (unique saved storages < one N×N matrix), and the gradients
    equal those of the single-block evaluation."""
    _, name, options = case
    n, d = 128, 4
    x0 = torch.randn(n, d, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    grads, saved_numel = [], []
    for chunk in (n, 8):
        k = make_kernel(name, d, **options, chunk_size=chunk)
        x = x0.clone().requires_grad_(True)
        storages = {}

        def pack(t, storages=storages):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes() // t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = k(x)
        out.pow(2).sum().backward()
        grads.append([x.grad] + [p.grad for p in k.parameters()])
        saved_numel.append(sum(storages.values()))
    assert saved_numel[0] >= n * n  # the single block keeps (chunk, N) = N×N temporaries ...
    assert saved_numel[1] < n * n  # ... the chunked evaluation does not
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name, options", [("attention", {}), ("rbf", {}), ("pairwise_mlp", {"width": 8})])
def test_auto_chunk_counts_every_population(name, options):
    """Many small populations (random-batch groups): the automatic chunk shrinks with the leading
    batch, so one block stays within the budget whatever the number of groups."""
    from mfsde.interactions import _base as base

    k = make_kernel(name, 4, **options)
    sizes = []
    real = base.run_chunks

    def spy(fn, rows, chunk, *args):
        sizes.append(chunk)
        return real(fn, rows, chunk, *args)

    mod = __import__(f"mfsde.interactions._{name}", fromlist=["run_chunks"])

    def small_budget(n, per_row, budget=8 * 2**20):
        return max(1, min(n, budget // per_row))

    with pytest.MonkeyPatch.context() as mp:
        for m in {mod, base}:  # wherever the kernel's blocks are driven from (its module or the base driver)
            if hasattr(m, "run_chunks"):
                mp.setattr(m, "run_chunks", spy)
                mp.setattr(m, "auto_chunk", small_budget)
        k(torch.randn(1, 64, 4, dtype=torch.float64))
        k(torch.randn(256, 64, 4, dtype=torch.float64))
    assert sizes[0] == 64 and sizes[1] < 64, sizes


@pytest.mark.parametrize(
    "name, options",
    [("attention", {"heads": 2}), ("attention", {"heads": 2, "style": "paper"}), ("pairwise_mlp", {"width": 8})],
)
def test_zero_init_starts_as_the_ito_model_and_still_learns(name, options):
    torch.manual_seed(0)
    plain = INTERACTIONS.build(name, dim=4, **options).eval()
    torch.manual_seed(0)
    zero = INTERACTIONS.build(name, dim=4, **options, zero_init=True).eval()
    x = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(1))
    out = zero(x)
    assert torch.equal(out, torch.zeros_like(out)) and plain(x).abs().max() > 1e-3
    # no random numbers consumed: every other parameter is as without zero_init
    changed = [k for k, v in zero.state_dict().items() if not torch.equal(v, plain.state_dict()[k])]
    assert changed and all(k.startswith(("ffn.2", "rest.")) for k in changed), changed
    out.sum().backward()  # d(sum)/d(last layer) = its inputs: not zero, so the kernel can learn
    last = zero.ffn[-1] if name == "attention" else zero.rest[-1]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0


def test_zero_init_refuses_residual():
    with pytest.raises(ValueError, match="zero_init=True cannot make f_inter zero with residual=True"):
        make_kernel("attention", 4, heads=2, residual=True, zero_init=True)


@pytest.mark.parametrize("basis", ["mlp", "linear"])
def test_radial_pair_bytes_grow_with_the_dimension(basis):
    """Each pair holds d-vectors (dx, the message): the automatic block size must see them."""
    x = torch.empty(0)
    small, large = (build_interaction("radial", dim=d, basis=basis).pair_bytes(x) for d in (2, 50))
    assert large - small >= 4 * 48 * x.element_size()


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_any_kernel_rows_equal_the_full_forward_on_any_block(data):
    """Drawn with the shipped strategies: a random kernel, population and row block."""
    x = data.draw(populations(dim=4, lead=((), (2,))))
    k = data.draw(kernels(dim=4))
    rows = data.draw(row_blocks(x.shape[-2]))
    try:
        part = k.forward_rows(x, rows)
    except NotImplementedError:
        return
    torch.testing.assert_close(part, k(x)[..., rows, :], atol=ATOL, rtol=RTOL)
