"""Branching particle systems (birth and death at position-dependent rates) and the metrics of
unbalanced populations (total mass variation, growth-rate error)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfsde.evaluation import growth_error, total_mass_variation
from mfsde.systems import Branching, MeanFieldOU, branching_morse, branching_ou, branching_snapshots


def constant_rates(b: float, d: float) -> Branching:
    base = MeanFieldOU(sigma=0.3)
    return Branching(
        base, lambda x: torch.full(x.shape[:-1], b, dtype=x.dtype), lambda x: torch.full(x.shape[:-1], d, dtype=x.dtype)
    )


def test_constant_rates_grow_the_count_as_exp_of_birth_minus_death():
    """E N_t = N_0 exp((b − d) t) for a branching process with constant rates (the Euler step's
    own factor (1 + (b − d) h)^(t/h) is within 0.3 % of it at h = 0.01)."""
    system, n0, t = constant_rates(1.0, 0.4), 4000, 1.0
    g = torch.Generator().manual_seed(0)
    counts = [
        x.shape[0]
        for x in system.simulate(system.base.sample_initial(n0, g, dtype=torch.float64), [0, 0.5, t], generator=g)
    ]
    expected = n0 * math.exp(0.6 * t)
    # variance of a linear birth–death process: N0 (b + d)/(b − d) e^{(b−d)t} (e^{(b−d)t} − 1)
    sd = math.sqrt(n0 * (1.4 / 0.6) * math.exp(0.6 * t) * (math.exp(0.6 * t) - 1))
    assert counts[0] == n0 and abs(counts[-1] - expected) < 4 * sd, (counts, expected, sd)
    assert counts[1] < counts[2]


def test_no_birth_and_no_death_keeps_every_particle():
    system = constant_rates(0.0, 0.0)
    g = torch.Generator().manual_seed(1)
    xs = system.simulate(system.base.sample_initial(300, g, dtype=torch.float64), [0.0, 0.3, 0.6], generator=g)
    assert [x.shape[0] for x in xs] == [300, 300, 300]


def test_position_dependent_rates_shift_the_population_towards_the_growing_side():
    """Division at rate 2 right of x₁ = 0 and death at rate 2 left of it, on a slow, quiet OU
    centred at 0: after t = 0.5 the right half holds e/(e + 1/e) ≈ 0.88 of the cells (half of
    them without branching) and the count is N₀ cosh(1) ≈ 1.54 N₀."""
    base = MeanFieldOU(A=0.01, K=0.0, sigma=0.05, m0=[0.0, 0.0], C0=1.0)
    system = Branching(base, lambda x: 2.0 * (x[..., 0] > 0).double(), lambda x: 2.0 * (x[..., 0] < 0).double())
    g = torch.Generator().manual_seed(0)
    x0 = base.sample_initial(4000, g, dtype=torch.float64)
    right0 = float((x0[:, 0] > 0).double().mean())
    x = system.simulate(x0, [0.0, 0.5], generator=g)[-1]
    share = float((x[:, 0] > 0).double().mean())
    expected = right0 * math.e / (right0 * math.e + (1 - right0) / math.e)
    assert abs(share - expected) < 0.02 and abs(x.shape[0] / 4000 - math.cosh(1.0)) < 0.05, (share, expected, x.shape)


def test_snapshots_are_deterministic_under_the_seed_and_count_the_cells():
    a, ma = branching_snapshots(branching_morse(), times=[0.0, 0.5], n0=150, seed=3)
    b, mb = branching_snapshots(branching_morse(), times=[0.0, 0.5], n0=150, seed=3)
    assert ma == mb and all(np.array_equal(x, y) for x, y in zip(a.data, b.data))
    assert [len(x) for x in a.data] == [round(m * 150) for m in ma]


def test_growth_rate_is_birth_minus_death():
    system = branching_ou(birth=1.2, death=0.4)
    x = torch.tensor([[1.0, 0.0], [5.0, 0.0], [-5.0, 0.0]], dtype=torch.float64)
    g = system.growth_rate(x)
    assert g[0] == pytest.approx(0.4) and g[1] == pytest.approx(1.2, abs=1e-3) and g[2] == pytest.approx(-0.4, abs=1e-3)


def test_growth_error_is_zero_for_the_truth_one_for_zero_and_takes_numpy():
    system = branching_ou()
    data, _ = branching_snapshots(system, times=[0.0, 0.5], n0=200, seed=0)
    assert growth_error(system.growth_rate, system.growth_rate, data.data)["growth"] == 0.0
    zero = growth_error(lambda x: np.zeros(len(x)), system.growth_rate, data.data)
    assert zero["growth"] == pytest.approx(1.0, abs=1e-12) and len(zero["per_time"]) == 2
    half = growth_error(lambda x: 0.5 * system.growth_rate(x), system.growth_rate, data.data)["growth"]
    assert half == pytest.approx(0.25, abs=1e-9)


def test_total_mass_variation():
    out = total_mass_variation([1.0, 1.5, 2.2], [1.0, 1.5, 2.0])
    assert out["per_time"] == pytest.approx([0.0, 0.0, 0.1]) and out["tmv"] == pytest.approx(0.1 / 3)


def test_bad_input_is_one_line():
    system = constant_rates(60.0, 60.0)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"\(birth \+ death\) · dt = 1.2 > 1; lower dt"):
        system.simulate(system.base.sample_initial(10, g, dtype=torch.float64), [0.0, 0.1], generator=g)
    negative = Branching(MeanFieldOU(), lambda x: -torch.ones(x.shape[:-1]), lambda x: torch.zeros(x.shape[:-1]))
    with pytest.raises(ValueError, match="birth rate must be finite and >= 0"):
        negative.rates(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="exceed max_particles = 50"):
        constant_rates(5.0, 0.0).simulate(
            torch.zeros(40, 2, dtype=torch.float64), [0.0, 1.0], generator=g, max_particles=50
        )
    with pytest.raises(ValueError, match="observed > 0"):
        total_mass_variation([1.0], [0.0])
    with pytest.raises(ValueError, match="expected \\(N,\\)"):
        growth_error(lambda x: x, lambda x: x[:, 0], [np.zeros((3, 2))])
    with pytest.raises(TypeError, match="Branching system"):
        branching_snapshots(MeanFieldOU())
