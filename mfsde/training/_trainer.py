"""The :class:`Trainer`: one training run advanced one iteration at a time, with its random streams.

:func:`mfsde.fit` drives it (run directory, checkpoints, signals, time budget); the
benchmarks step several trainers in turn. See :mod:`mfsde.training` for the recipe.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from mfsde.config._schema import Config
from mfsde.data._inputs import build_series, draw_initial, group_series, training_members
from mfsde.losses import LOSSES, path_energy, subsample
from mfsde.model._scaling import training_spread
from mfsde.model._sde import MeanFieldSDE, build_model, sigma_to_model_units
from mfsde.training import _distributed as distributed
from mfsde.training import _flow_matching as _fm
from mfsde.training import _geodesic
from mfsde.training import _runs as runs
from mfsde.training._averaging import ParameterAverage
from mfsde.training._rng import RandomStreams, replica_seed, seed_everything

RESUMABLE_CHANGES = (
    "train.iterations",
    "train.checkpoint_every",
    "train.checkpoint_seconds",
    "train.log_every",
    "train.time_budget",
    "train.time_clock",
    "train.eval_every",
)


class FitLoss:
    """The distribution loss of a config with ``train.n_targets`` target sub-sampling.

    The loss is built by registry name from ``config.loss.fit``; ``train.n_targets`` is passed
    as its ``n_targets`` option unless the loss options set one themselves. A registered loss
    without an ``n_targets`` option gets its targets sub-sampled here. The generator is passed
    to the loss when its ``forward`` accepts one.
    """

    def __init__(self, config: Config):
        comp = config.loss.fit
        cls = LOSSES.get(comp.name)
        options = dict(comp.options)
        accepted = inspect.signature(cls).parameters
        self.n_targets = options.get("n_targets", config.train.n_targets)
        self.external = "n_targets" not in accepted
        if not self.external:
            options.setdefault("n_targets", config.train.n_targets)
        self.loss = LOSSES.build(comp.name, **options)
        fwd = getattr(self.loss, "forward", self.loss)
        try:
            self.takes_generator = "generator" in inspect.signature(fwd).parameters
        except (TypeError, ValueError):
            self.takes_generator = False

    def __call__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        log_w: torch.Tensor | None = None,
        mass: float | None = None,
    ) -> torch.Tensor:
        if self.external:
            y = subsample(y, self.n_targets, generator)
        weights = {} if log_w is None else {"log_w": log_w, "mass": mass}
        if self.takes_generator:
            return self.loss(x, y, generator=generator, **weights)
        return self.loss(x, y, **weights)


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        key = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def _task_dict(task) -> dict:
    if not hasattr(task, "train"):  # a PopulationTask
        return task.to_dict()
    return {
        "name": getattr(task, "name", None),
        "train": [int(i) for i in task.train],
        "heldout": [int(i) for i in task.heldout],
    }


def _mass_at(series, k: int) -> float | None:
    """The observed mass of ``series`` at index ``k`` relative to its first snapshot (``None``:
    normalised data)."""
    return None if series.mass is None else float(series.mass[k])


# -- training --------------------------------------------------------------------------------
def default_simulate(
    model: MeanFieldSDE, x0: torch.Tensor, ts: torch.Tensor, generator: torch.Generator, random_batch: int | None = None
):
    """The training simulation, ``model(x0, ts, …, energy=True)``: a Solution with ``xs`` and ``energy``."""
    return model(x0, ts, generator=generator, energy=True, random_batch=random_batch)


class Trainer:
    """One training run, advanced one iteration at a time by :meth:`step` (:func:`fit` drives it).

    Builds the model (torch's global RNG seeded with ``train.seed`` first), Adam, StepLR, the fit
    loss and, per population simulated here, a ``torch.Generator`` for cell draws, Brownian increments,
    random groups and target sub-sampling (on a GPU a second, CPU one for the sub-samples) and a copy
    of torch's global RNG state (used by dropout), swapped in while that population is simulated; so
    trainers stepped in turn (as the benchmarks do) do not change each other's results.

    When a ``torch.distributed`` process group is initialised the trainer simulates only the
    replicas of its rank (``train.replicas`` must be divisible by the world size) and
    wraps the model in ``DistributedDataParallel``; :meth:`step` and :meth:`state_dict` are
    then collective: every rank must call them.

    Args:
        config, snapshots, task, device: as for :func:`fit` (``device=None``: the CPU, or this
            rank's GPU under an NCCL process group).
        simulate: ``simulate(model, x0, ts, generator)`` returning an object with ``xs`` ``(T, N, d)``,
            ``energy`` ``(T,)`` and ``ts`` (default :func:`default_simulate`); lets benchmarks swap the
            solver (e.g. torchsde). Under DDP ``model`` is the ``DistributedDataParallel`` wrapper and
            must be called (its forward) for the gradients to be averaged.

    Attributes:
        model (the plain module, also under DDP), optimiser, scheduler, replicas (this rank's
        :class:`RandomStreams`), generator (the first one's), iteration, history.
    """

    def __init__(
        self,
        config: Config,
        snapshots,
        task,
        *,
        device: str | torch.device | None = None,
        simulate: Callable | None = None,
    ):
        if not isinstance(config, Config):
            raise TypeError(f"config must be an mfsde.Config, got {type(config).__name__}")
        config.validate()
        task, members = training_members(snapshots, task, config.model.dim)
        self.config, self.task, self.snapshots = config, task, snapshots
        tc = config.train
        if simulate is not None and tc.random_batch is not None:
            raise ValueError(
                "train.random_batch is applied by the default simulation only; pass it in your own simulate"
            )
        if simulate is not None and tc.method == "flow_matching":
            raise ValueError("train.method 'flow_matching' never simulates: a simulate function would be ignored")
        # before anything collective: every rank raises the same error
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        indices = distributed.local_replicas(tc.replicas, self.rank, self.world_size)
        self.device = torch.device(device) if device is not None else distributed.default_device()
        dtype = torch.get_default_dtype()

        seed_everything(tc.seed)
        self.model = build_model(config).to(self.device)
        self.model.train()
        if tc.random_batch is not None and not getattr(self.model.drift.inter, "equivariant", True):
            raise ValueError(
                f"train.random_batch needs a permutation-equivariant kernel; {config.model.inter.name!r} is not"
            )
        # the model works in standardised units fitted on the training times (mfsde.model)
        scale = self.model.scale.fit_many_(
            [(s, t.train) for _, s, t in members], config.model.standardize, config.model.time_scale
        )
        # model.sigma_units "data" or "spread": σ in model units from the fitted scale (and the cells' spread)
        spread = None
        if config.model.sigma_units == "spread":
            spread = training_spread([(s, t.train) for _, s, t in members], scale)
        sigma_to_model_units(self.model, config, spread)
        #: one ``Series`` (mfsde/data/_inputs.py) per training population, and their batches
        self.series = build_series(members, scale, self.device, dtype, config.data.mass)
        self.groups = group_series(self.series)
        #: the indices of the ``fit@k`` records: every training index ≥ 1 of any population
        self.fit_idx = sorted({k for s in self.series for k in s.fit_idx})
        if tc.method != "simulation":
            if self.world_size > 1:
                raise ValueError(
                    f"train.method {tc.method!r} runs in one process; data-parallel (torchrun) training "
                    "needs train.method 'simulation'"
                )
            _fm.diffusion_sigma(self.model.diffusion)  # noise that a Brownian bridge cannot carry: refused now
            if tc.fm_interpolant == "metric":  # k-means needs as many cells as centres in every gap: refused now
                cells = min(
                    sum(min(_geodesic.METRIC_CELLS, len(s.data[k])) for k in pair)
                    for s in self.series
                    for pair in zip([0, *s.fit_idx], s.fit_idx)
                )
                if tc.fm_metric_centers > cells:
                    raise ValueError(
                        f"train.fm_metric_centers must be at most {cells} (the cells of the smallest gap's two "
                        f"snapshots); got {tc.fm_metric_centers}"
                    )
        self._fm_metrics: dict = {}  # (population, gap) -> the gap's metric (train.fm_interpolant "metric")
        self._fm_plans: dict = {}  # (population, gap) -> the gap's OT plan (train.fm_coupling "global")
        self.replicas = [self._replica(p) for p in indices]
        self.generator = self.replicas[0].generator
        self.forward_model = self._wrap(self.model)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self._param_names = [n for n, _ in named]
        #: the moving average of ``params`` (``train.ema``), or ``None``
        self.ema = ParameterAverage(self.params, tc.ema) if tc.ema > 0 else None
        self.optimiser = torch.optim.Adam(self._param_groups(named, tc), lr=tc.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimiser, step_size=tc.lr_step, gamma=tc.lr_gamma)
        self.loss_fn = FitLoss(config)
        self.simulate = simulate or functools.partial(default_simulate, random_batch=tc.random_batch)
        self.iteration, self.history = 0, []
        #: wall-clock and CPU seconds (this process, all threads) in :meth:`step` over the run, resumed parts included
        self.train_wall_seconds, self.train_cpu_seconds = 0.0, 0.0

    @property
    def weighted(self) -> bool:
        """Whether the model has a mass channel (``model.growth``): particles carry weights."""
        return self.model.growth is not None

    @property
    def phase(self) -> str:
        """The loss the next :meth:`step` trains with: ``"flow_matching"`` or ``"simulation"``
        (``train.method``; ``"flow_matching+simulation"`` switches after ``train.fm_iterations``, or
        once ``train.fm_share`` of ``train.time_budget`` is spent, whichever comes first). Once the
        simulation phase has begun it stays (a history record carries each step's phase)."""
        tc = self.config.train
        if tc.method == "flow_matching":
            return "flow_matching"
        if tc.method != "flow_matching+simulation" or self.iteration >= tc.fm_iterations:
            return "simulation"
        if self.history and self.history[-1].get("phase") == "simulation":
            return "simulation"
        if tc.fm_share is not None and self.train_seconds >= tc.fm_share * tc.time_budget:
            return "simulation"
        return "flow_matching"

    def _start_simulation_phase(self) -> None:
        """At the switch from flow matching to simulation (``flow_matching+simulation``), with
        ``train.fm_restart_lr``: the step-size schedule starts again from ``train.lr`` (flow
        matching's many cheap steps have decayed it, and the simulation phase's few costly steps
        would otherwise run at that decayed rate). The scheduler's state is in the checkpoint, so
        a resumed run restarts at the same iteration."""
        if not self.config.train.fm_restart_lr:
            return
        for group in self.optimiser.param_groups:
            group["lr"] = group["initial_lr"]
        self.scheduler.last_epoch = 0
        self.scheduler._last_lr = [group["lr"] for group in self.optimiser.param_groups]

    @property
    def train_seconds(self) -> float:
        """Seconds of training steps on the clock ``train.time_budget`` counts (``train.time_clock``)."""
        return self.train_cpu_seconds if self.config.train.time_clock == "cpu" else self.train_wall_seconds

    @staticmethod
    def _param_groups(named: list, tc) -> list[dict]:
        """Adam's groups: σ (``train.sigma_lr``) and the kernel (``train.inter_lr``) where set; the rest ``lr``."""
        lrs = {"diffusion.": ("train.sigma_lr", tc.sigma_lr), "drift.inter.": ("train.inter_lr", tc.inter_lr)}
        own = {k: v for k, v in lrs.items() if v[1] is not None}
        groups, rest = {}, []  # groups in order of first appearance (the order checkpoints were saved in)
        for n, p in named:
            prefix = next((k for k in own if n.startswith(k)), None)
            (groups.setdefault(prefix, []) if prefix else rest).append(p)
        for k in (k for k in own if k not in groups):  # e.g. a plugin kernel without parameters
            raise ValueError(f"{own[k][0]} is set but no trainable parameter under {k[:-1]!r} takes it")
        return [{"params": rest}] + [{"params": ps, "lr": own[k][1]} for k, ps in groups.items()]

    def _wrap(self, model: MeanFieldSDE) -> torch.nn.Module:
        """``model`` itself, or its ``DistributedDataParallel`` wrapper under a process group
        (which checks that every rank has the same parameter shapes and broadcasts rank 0's)."""
        if not distributed.is_distributed():
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            return DistributedDataParallel(model, device_ids=[index], output_device=index)
        return DistributedDataParallel(model)

    # -- RNG of this run ----------------------------------------------------------------------
    def _replica(self, p: int) -> RandomStreams:
        """The streams of replica ``p`` (replica 0: those of a single-replica run; its
        global RNG state is the current one, right after the model was built)."""
        seed = self.config.train.seed
        gen = torch.Generator(device=self.device).manual_seed(replica_seed(seed, 1, p))
        # target sub-sampling draws its permutations on the CPU: off the CPU it needs a CPU generator
        target = gen if self.device.type == "cpu" else torch.Generator().manual_seed(replica_seed(seed, 2, p))
        if p == 0:
            rng = self._global_rng()
        else:  # the states torch.manual_seed would give, without touching the global RNG
            s = replica_seed(seed, 3, p)
            rng = {"cpu": torch.Generator().manual_seed(s).get_state()}
            if self.device.type == "cuda":
                rng["cuda"] = torch.Generator(device=self.device).manual_seed(s).get_state()
        return RandomStreams(p, gen, target, rng)

    def _global_rng(self):
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_global_rng(self, state) -> None:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # -- one iteration ------------------------------------------------------------------------
    def population_loss(self, pop: RandomStreams) -> tuple[torch.Tensor, ...]:
        """Draw cells, simulate population ``pop`` with its own streams and return
        ``(loss, fit term, energy term, fits per time)`` (scalars and a ``(K,)`` tensor over
        :attr:`fit_idx`). With several data populations every one is simulated from its own
        first snapshot (those sharing a time axis as one batch of independent systems; with
        ``train.starts = "every"``, and on even iterations with ``"mixed"``, from its cells at the start
        of every gap, :meth:`_segment_parts`)
        and the terms are means over populations (``fit@k``: over the populations trained at k). With
        ``loss.tail_weight`` the simulation runs one mean gap past the last training time and the
        loss also holds ``tail_weight`` × the mean energy per unit time there (not a separate record).

        With a growth model (:attr:`weighted`) the fit sees the particles' weights, and the
        return is ``(loss, fit, energy, mass term, growth term, fits per time)``: the mass term
        is the mean over training times of ((M̂_k − m_k) / m_k)² (0 with ``data.mass =
        "normalised"``), the growth term ∫ Σ_i w̄_i g_i² dt over the time span."""
        weighted = self.weighted
        tail_weight = float(self.config.loss.tail_weight)
        tails = []  # per group: the energy per unit time over the tail past the last training time
        self._set_global_rng(pop.torch_rng)
        try:
            parts = self._path_parts(pop, tails) if self.starts_now == "first" else self._segment_parts(pop)
        finally:
            pop.torch_rng = self._global_rng()
        lc = self.config.loss
        fw, ew = float(lc.fit_weight), float(lc.energy_weight)
        fit_term = torch.stack([p[1].mean() for p in parts]).mean()
        energy = torch.stack([p[2] for p in parts]).mean()
        per_k = []
        for k in self.fit_idx:
            per_k.append(torch.stack([p[1][p[0].fit_idx.index(k)] for p in parts if k in p[0].fit_idx]).mean())
        loss = fw * fit_term + ew * energy
        if tails:
            loss = loss + tail_weight * torch.stack(tails).mean()
        if not weighted:
            return loss, fit_term, energy, torch.stack(per_k)
        mass_term = torch.stack([p[3] for p in parts]).mean()
        growth_term = torch.stack([p[4] for p in parts]).mean()
        loss = loss + float(lc.mass_weight) * mass_term + float(lc.growth_weight) * growth_term
        return loss, fit_term, energy, mass_term, growth_term, torch.stack(per_k)

    @property
    def starts_now(self) -> str:
        """Where this iteration's simulations start: ``train.starts``, or with ``"mixed"``
        ``"first"`` on odd iterations (1, 3, …) and ``"every"`` on even ones."""
        starts = self.config.train.starts
        if starts != "mixed":
            return starts
        return "first" if self.iteration % 2 == 0 else "every"

    def _path_parts(self, pop: RandomStreams, tails: list) -> list[tuple]:
        """``train.starts = "first"``: every population simulated from its first snapshot through
        its training times (populations on one time axis as one batch). Per population ``(series,
        fits (K_s,), energy, mass term, growth term)`` (the last two ``None`` without growth);
        with ``loss.tail_weight`` the tail's energy per unit time is appended to ``tails``."""
        tc = self.config.train
        weighted = self.weighted
        tail_weight = float(self.config.loss.tail_weight)
        parts = []  # (series, fits (K_s,), energy, mass term, growth term) per data population
        for group in self.groups:
            members = [self.series[i] for i in group]
            x0 = [draw_initial(s.data[0], tc.n_particles, pop.generator) for s in members]
            x0 = x0[0] if len(x0) == 1 else torch.stack(x0)
            ts = members[0].ts
            t_last = float(ts[-1])
            if tail_weight > 0:  # one mean gap past the last training time, where no data constrain f
                gap = (t_last - float(ts[0])) / max(len(ts) - 1, 1)
                ts = torch.cat([ts, ts[-1:] + gap])
            sol = self.simulate(self.forward_model, x0, ts, pop.generator)
            energy = path_energy(sol, t_end=t_last)
            if tail_weight > 0:
                tails.append((sol.energy[-1] - sol.energy[-2]).mean() / gap)
            if weighted:
                growth_energy = path_energy(sol, t_end=t_last, energy="growth")
                mass = sol.mass()
            for j, s in enumerate(members):
                one = len(members) == 1
                xs = sol.xs if one else sol.xs[:, j]
                if not weighted:
                    fits = torch.stack([self.loss_fn(xs[k], s.data[k], pop.target_generator) for k in s.fit_idx])
                    parts.append((s, fits, energy if one else energy[j], None, None))
                    continue
                lw = sol.log_w if one else sol.log_w[:, j]
                m_hat = mass if one else mass[:, j]
                fits = torch.stack(
                    [
                        self.loss_fn(xs[k], s.data[k], pop.target_generator, log_w=lw[k], mass=_mass_at(s, k))
                        for k in s.fit_idx
                    ]
                )
                if s.mass is None:
                    mass_term = m_hat.new_zeros(())
                else:
                    mass_term = torch.stack([((m_hat[k] - s.mass[k]) / s.mass[k]) ** 2 for k in s.fit_idx]).mean()
                g_e = growth_energy if one else growth_energy[j]
                parts.append((s, fits, energy if one else energy[j], mass_term, g_e))
        return parts

    def _segment_parts(self, pop: RandomStreams) -> list[tuple]:
        """``train.starts = "every"``: one simulation per gap between consecutive training times,
        started from ``train.n_particles`` observed cells of the gap's first time and fitted to the
        next training time's cells. Populations that share their time axis and training times are
        simulated together, one batch per gap. Per population ``(series, fits (K_s,), energy, mass
        term, growth term)``: the energy is the drift's mean energy per unit time over all its gaps,
        as one path from the first time would have it.

        With a growth model every gap's particles start at weight 1 and carry the observed mass of
        the gap's first time (``data.mass``; 1 when normalised): the model's mass at the gap's end is
        that mass × the mean weight the gap grew, the fit sees the weights, and the mass and growth
        terms are the same means as along one path (the last two are ``None`` without growth)."""
        tc = self.config.train
        weighted = self.weighted
        batches: dict[tuple, list] = {}
        for s in self.series:
            batches.setdefault((tuple(s.ts.tolist()), tuple(s.fit_idx)), []).append(s)
        parts = []
        for members in batches.values():
            one = len(members) == 1
            ts, fit_idx = members[0].ts, members[0].fit_idx
            fits, masses, energy, growth_energy = [], [], 0.0, 0.0
            for a, b in zip([0, *fit_idx[:-1]], fit_idx):
                x0 = [draw_initial(s.data[a], tc.n_particles, pop.generator) for s in members]
                x0 = x0[0] if one else torch.stack(x0)
                sol = self.simulate(self.forward_model, x0, ts[a : b + 1], pop.generator)
                energy = energy + path_energy(sol, normalise=False)
                xs = sol.xs[-1]
                if weighted:
                    growth_energy = growth_energy + path_energy(sol, normalise=False, energy="growth")
                    grown = sol.mass()[-1]
                fit_b, mass_b = [], []
                for j, s in enumerate(members):
                    x_j = xs if one else xs[j]
                    if not weighted:
                        fit_b.append(self.loss_fn(x_j, s.data[b], pop.target_generator))
                        continue
                    m_a = 1.0 if s.mass is None else float(s.mass[a])
                    lw = (sol.log_w[-1] if one else sol.log_w[-1, j]) + math.log(m_a)
                    fit_b.append(self.loss_fn(x_j, s.data[b], pop.target_generator, log_w=lw, mass=_mass_at(s, b)))
                    m_hat = m_a * (grown if one else grown[j])
                    mass_b.append(m_hat.new_zeros(()) if s.mass is None else ((m_hat - s.mass[b]) / s.mass[b]) ** 2)
                fits.append(torch.stack(fit_b))
                if weighted:
                    masses.append(torch.stack(mass_b))
            span = float(ts[fit_idx[-1]] - ts[0])
            energy = energy / span
            fits = torch.stack(fits)  # (K, members)
            if weighted:
                masses = torch.stack(masses).mean(0)  # (members,)
                growth_energy = growth_energy / span
            for j, s in enumerate(members):
                mass_term = masses[j] if weighted else None
                g_e = (growth_energy if one else growth_energy[j]) if weighted else None
                parts.append((s, fits[:, j], energy if one else energy[j], mass_term, g_e))
        return parts

    def fm_metric(self, series: int, gap: int):
        """The data-density metric (:mod:`mfsde.training._geodesic`) of gap ``gap`` (between the
        training times ``gap`` and ``gap + 1``) of training population ``series``, built on first use
        from at most ``METRIC_CELLS`` (2000) cells of each of the gap's two snapshots with a generator of its own
        (seeded by ``train.seed``, the population and the gap), so that it is the same on every
        resume and draws nothing from the training streams. Warns when h ≈ 1 does not hold on the
        cells (mean (1 − h)² > 0.5: the centres are too narrow for the data)."""
        key = (series, gap)
        if key not in self._fm_metrics:
            tc = self.config.train
            s = self.series[series]
            ends, gen = self._gap_ends(series, gap, 4)
            cells = torch.cat([draw_initial(c, _geodesic.METRIC_CELLS, gen) for c in ends])
            metric = _geodesic.RBFMetric(cells, tc.fm_metric_centers, tc.fm_metric_kappa, tc.fm_metric_eps, gen).to(
                s.data[0].device
            )
            if metric.fit_error > 0.5:
                warnings.warn(
                    f"train.fm_metric_kappa: the metric of gap {gap} does not cover its cells (mean (1 - h)^2 = "
                    f"{metric.fit_error:.2f} on them); raise train.fm_metric_kappa",
                    UserWarning,
                    stacklevel=2,
                )
            self._fm_metrics[key] = metric
        return self._fm_metrics[key]

    def fm_plan(self, series: int, gap: int) -> _fm.GlobalPlan:
        """The exact OT plan (``train.fm_coupling "global"``) of gap ``gap`` of training population
        ``series``, solved on first use between at most ``train.fm_plan_cells`` cells of each of the
        gap's two snapshots, drawn with a generator of its own (seeded by ``train.seed``, the population
        and the gap), so that it is the same on every resume and draws nothing from the training
        streams. With ``train.fm_interpolant "metric"`` it also solves the geodesic of each of its
        entries in the gap's metric, once. Its solve counts in the training time of the step that
        first needs it."""
        key = (series, gap)
        if key not in self._fm_plans:
            cells, gen = self._gap_ends(series, gap, 5)
            n = self.config.train.fm_plan_cells
            ends = [draw_initial(c, min(len(c), n), gen).to(self.series[series].data[0].device) for c in cells]
            metric = self.fm_metric(series, gap) if self.config.train.fm_interpolant == "metric" else None
            self._fm_plans[key] = _fm.GlobalPlan(*ends, metric=metric)
        return self._fm_plans[key]

    def _gap_ends(self, series: int, gap: int, stream: int) -> tuple[list[torch.Tensor], torch.Generator]:
        """The two snapshots (on the CPU) of gap ``gap`` of training population ``series``, and a
        generator of their own for ``stream`` (seeded by ``train.seed``, the stream, the population
        and the gap: the same on every resume, and no draw from the training streams)."""
        s = self.series[series]
        idx = [0] + list(s.fit_idx)
        seq = np.random.SeedSequence([int(self.config.train.seed), stream, series, gap])
        gen = torch.Generator().manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> 1))
        return [s.data[idx[g]].cpu() for g in (gap, gap + 1)], gen

    def flow_matching_loss(self, pop: RandomStreams) -> torch.Tensor:
        """The flow-matching loss (:mod:`mfsde.training`) of population ``pop``'s draws: one
        batch of ``train.fm_times`` bridged populations of ``train.fm_batch`` cells per training
        series, drawn with the population's generator (dropout with its global RNG state); the mean
        over series. A scalar."""
        tc = self.config.train
        self._set_global_rng(pop.torch_rng)
        try:
            sigma = _fm.diffusion_sigma(self.model.diffusion)
            losses = []
            for i, s in enumerate(self.series):
                metrics = None if tc.fm_interpolant == "linear" else functools.partial(self.fm_metric, i)
                fb = _fm.flow_matching_batch(
                    s,
                    sigma,
                    n_times=tc.fm_times,
                    batch=tc.fm_batch,
                    coupling=tc.fm_coupling,
                    generator=pop.generator,
                    metrics=metrics,
                    plans=functools.partial(self.fm_plan, i) if tc.fm_coupling == "global" else None,
                )
                losses.append(_fm.flow_matching_loss(self.model.drift, fb, tc.random_batch, pop.generator))
        finally:
            pop.torch_rng = self._global_rng()
        return torch.stack(losses).mean()

    def _backward_replicas(self, phase: str) -> torch.Tensor:
        """Simulate this rank's replicas one at a time and accumulate the gradient of
        loss_p / n_local into ``.grad`` (one graph alive at a time). Under DDP only the last
        backward all-reduces (the others run under ``no_sync``), and DDP divides by the world
        size, so every rank ends with the gradient of the mean loss over all replicas (equal
        to that of one process running them all up to the order of floating-point summation;
        the 2-process test observed identical losses with one replica per rank). Returns the
        ``(3 + K,)`` sum over the local replicas of (loss, fit, energy, fits per time),
        detached; in the flow-matching phase the ``(1,)`` sum of the flow-matching loss."""
        n = len(self.replicas)
        total = None
        flow = phase == "flow_matching"
        for i, pop in enumerate(self.replicas):
            sync = n == 1 or i == n - 1 or self.forward_model is self.model
            with contextlib.nullcontext() if sync else self.forward_model.no_sync():
                if flow:  # one process only (checked at construction): no DDP forward to go through
                    loss = self.flow_matching_loss(pop)
                    parts = [loss]
                else:
                    parts = list(self.population_loss(pop))
                    loss = parts[0]
                (loss if n == 1 else loss / n).backward()
            stats = torch.cat([p.detach().reshape(-1) for p in parts])
            total = stats if total is None else total + stats
        return total

    def global_stats(self, local_sum: torch.Tensor) -> torch.Tensor:
        """The mean over all ``train.replicas`` of a per-replica ``local_sum`` (summed over
        this rank's replicas; all-reduced over the ranks, so every rank gets the same numbers)."""
        total = distributed.all_reduce_sum(local_sum) if self.world_size > 1 else local_sum
        replicas = self.config.train.replicas
        return total if replicas == 1 else total / replicas

    def step(self) -> dict:
        """One training iteration; returns (and appends to :attr:`history`) its record.

        Under DDP the backward passes average the gradients over the ranks, so clipping and the
        Adam step see the gradient of the mean loss over all replicas."""
        t0, c0 = time.perf_counter(), time.process_time()
        phase = self.phase
        if phase == "simulation" and self.history and self.history[-1].get("phase") == "flow_matching":
            self._start_simulation_phase()
        lr = self.optimiser.param_groups[0]["lr"]
        starts = self.starts_now
        self.optimiser.zero_grad(set_to_none=True)
        stats = self.global_stats(self._backward_replicas(phase))
        if not torch.isfinite(stats[0]):  # the same decision on every rank, before any update
            detail = (
                "flow-matching loss" if phase == "flow_matching" else f"fit={stats[1].item()}, energy={stats[2].item()}"
            )
            raise FloatingPointError(
                f"non-finite loss at iteration {self.iteration + 1} ({detail}); try a smaller train.lr or model.dt"
            )
        clip = self.config.train.clip_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip if clip is not None else math.inf)
        self.optimiser.step()
        self.scheduler.step()
        self.iteration += 1
        if self.ema is not None:
            self.ema.update(self.iteration)
        values = stats.tolist()
        if phase == "flow_matching":
            losses = {"loss": values[0], "fm": values[0]}
        else:
            losses = {"loss": values[0], "fit": values[1], "energy": values[2]}
            if self.weighted:
                losses.update(mass=values[3], growth=values[4])
            per_k = values[5:] if self.weighted else values[3:]
            losses.update({f"fit@{k}": v for k, v in zip(self.fit_idx, per_k)})
        rec = {
            "iteration": self.iteration,
            **losses,
            **({"phase": phase} if self.config.train.method != "simulation" else {}),
            **({"starts": starts} if self.config.train.starts == "mixed" and phase == "simulation" else {}),
            "lr": lr,
            "grad_norm": float(grad_norm),
            "grad_norm_clipped": min(float(grad_norm), clip) if clip is not None else float(grad_norm),
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
        }
        if self.config.model.learn_sigma and self.model.diffusion.additive:  # the learned σ (model units, mean over d)
            rec["sigma"] = float(self.model.diffusion.constant().detach().mean())
        self.history.append(rec)
        self.train_wall_seconds += rec["seconds"]
        self.train_cpu_seconds += rec["cpu_seconds"]
        return rec

    def fit_report(self) -> dict:
        """Exact W1 in data units at every time index ≥ 1 up to the last task time (training and
        held-out), ``train.eval_particles`` cells simulated from t₀ with ``eval.seed``:
        ``{"w1@k": …, "eval_seconds": …}`` (merged into the history record by :func:`fit`).
        Tells under-fitting (training times far) from over-fitting (training near, held-out far).
        With ``train.ema`` the averaged weights are scored."""
        t0 = time.perf_counter()
        with self.averaged():
            out = self._fit_report()
        out["eval_seconds"] = time.perf_counter() - t0
        return out

    def _fit_report(self) -> dict:
        from mfsde.evaluation._evaluate import evaluate, metric_key

        if hasattr(self.task, "train"):
            times = range(1, max([*self.task.train, *self.task.heldout]) + 1)
        else:  # populations: every later time of every population, held-out ones included
            times = range(1, max(s.n_times for s in self.snapshots.values()))
        ev = evaluate(
            self.model,
            self.snapshots,
            self.task,
            n_particles=self.config.train.eval_particles,
            seed=self.config.eval.seed,
            times=times,
            metrics=("w1",),
        )
        return {metric_key("w1", r): r["w1"] for r in ev["per_time"]}

    def averaged(self):
        """A context in which the model holds the averaged weights (``train.ema``; no-op when off)."""
        return contextlib.nullcontext() if self.ema is None else self.ema.applied()

    def use_averaged(self) -> None:
        """Replace the model's weights by their average for good (end of training)."""
        if self.ema is not None:
            self.ema.apply()

    # -- checkpoints --------------------------------------------------------------------------
    @staticmethod
    def _replica_rng(pop: RandomStreams) -> dict:
        out = {"generator": pop.generator.get_state(), "torch": pop.torch_rng["cpu"]}
        if "cuda" in pop.torch_rng:
            out["torch_cuda_device"] = pop.torch_rng["cuda"]
        if pop.target_generator is not pop.generator:
            out["target_generator"] = pop.target_generator.get_state()
        return out

    def _set_replica_rng(self, pop: RandomStreams, state: dict) -> None:
        pop.generator.set_state(state["generator"])
        pop.torch_rng = {"cpu": state["torch"]}
        if "torch_cuda_device" in state and self.device.type == "cuda":
            pop.torch_rng["cuda"] = state["torch_cuda_device"]
        if pop.target_generator is not pop.generator and "target_generator" in state:
            pop.target_generator.set_state(state["target_generator"])

    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (what ``checkpoint.pt`` holds).

        ``rng["replicas"]`` holds the streams of every replica (gathered from all
        ranks: collective under DDP); the top-level ``rng`` keys are replica 0's. The
        model's entries are the plain module's, so the checkpoint loads in a single process."""
        gathered: dict[int, dict] = {}
        for part in distributed.all_gather_objects({pop.index: self._replica_rng(pop) for pop in self.replicas}):
            gathered.update(part)
        rng = runs.rng_states()
        rng.update(gathered[self.replicas[0].index])
        rng["replicas"] = [gathered[p] for p in range(self.config.train.replicas)]
        extra = {}
        if self.ema is not None:  # the model's state with the averaged parameters (the average's only copy)
            extra["model_averaged"] = {**self.model.state_dict(), **dict(zip(self._param_names, self.ema.state()))}
        return {
            **extra,
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "history": list(self.history),
            "rng": rng,
            "task": _task_dict(self.task),
            "versions": runs.package_versions(),
        }

    def load_state_dict(self, ckpt: dict, source: str = "checkpoint") -> None:
        """Restore :meth:`state_dict` output after checking that config and task match."""
        saved = Config.from_dict(ckpt["config"]).to_dict()  # fields added since get their defaults
        diff = [k for k in _config_diff(saved, self.config.to_dict()) if k not in RESUMABLE_CHANGES]
        if diff:
            raise ValueError(f"cannot resume {source!r}: config differs from the checkpoint's in {diff}")
        mine, theirs = _task_dict(self.task), dict(ckpt["task"])
        if {k: v for k, v in theirs.items() if k != "name"} != {k: v for k, v in mine.items() if k != "name"}:
            raise ValueError(f"cannot resume {source!r}: checkpoint task {ckpt['task']} differs from {mine}")
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.load([ckpt["model_averaged"][n] for n in self._param_names])
        self.optimiser.load_state_dict(ckpt["optimiser"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]
        runs.set_rng_states(rng)
        states = rng.get("replicas") or [rng]  # checkpoints of single-replica runs
        for pop in self.replicas:
            self._set_replica_rng(pop, states[pop.index])
        self.iteration, self.history = int(ckpt["iteration"]), list(ckpt["history"])
        self.train_wall_seconds = float(sum(r.get("seconds", 0.0) for r in self.history))
        # records written before the CPU clock count their wall time
        self.train_cpu_seconds = float(sum(r.get("cpu_seconds", r.get("seconds", 0.0)) for r in self.history))
