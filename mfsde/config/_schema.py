"""Plain, serialisable configs that build models by registry names.

A :class:`Config` round-trips through ``dict``/JSON/TOML (:meth:`Config.to_dict`,
:meth:`Config.from_dict`, :meth:`Config.save`, :meth:`Config.load`) and builds the model with
:func:`mfsde.model.build_model`. Unknown keys, unknown registry names and bad values raise errors
that list what exists.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mfsde._io import write_text_atomic
from mfsde.config._validate import _check_keys, _check_types, _drop_none, _none_paths, merge, toml_loads


@dataclass
class Component:
    """A registry name plus keyword options, e.g. ``Component("attention", {"heads": 2})``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_any(cls, value: Any, what: str) -> Component:
        if isinstance(value, Component):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, dict):
            value = dict(value)
            if "name" not in value:
                raise ValueError(f"{what} needs a 'name' key, got keys {sorted(value)}")
            name = value.pop("name")
            options = value.pop("options", {})
            options.update(value)
            return cls(name, options)
        raise TypeError(f"{what} must be a name, a dict with 'name', or a Component; got {value!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, **self.options}


#: the units of ``model.sigma``
SIGMA_UNITS = ("model", "data", "spread")
#: where training simulations start (``train.starts``)
STARTS = ("first", "every", "mixed")
#: the clocks ``train.time_budget`` can count
TIME_CLOCKS = ("cpu", "wall")
#: what a snapshot's cell count means (``data.mass``; a list of relative sizes is the third form)
MASS_MODES = ("normalised", "counts")


@dataclass
class ModelConfig:
    """The mean-field SDE: dx = (f_intra + f_inter) dt + σ dW, integrated by ``solver``."""

    dim: int = 50
    intra: Component = field(default_factory=lambda: Component("mlp", {"width": 256, "depth": 2}))
    inter: Component = field(default_factory=lambda: Component("attention", {"heads": 2, "dropout": 0.1}))
    sigma: float | list[float] = 0.1
    #: ``"model"``: σ is in model units (standardised space, model time). ``"data"``: σ is in the
    #: data's own units per data time unit (e.g. a known noise level of a simulated system),
    #: converted once the scale is fitted: σ_model = σ · √time_unit / scale (per dimension).
    #: ``"spread"``: σ is the root-mean-square level in model units, shared out over the dimensions
    #: in proportion to the training cells' standard deviation along each (σ_k = σ · sd_k / rms(sd)):
    #: the same total noise as ``"model"``, but no direction gets more noise than its spread.
    sigma_units: str = "model"
    #: train σ with the drift (a positive ``nn.Parameter`` stored as log σ; it must start > 0)
    learn_sigma: bool = False
    #: the noise model by name (:mod:`mfsde.solvers`): ``"diagonal"`` (σ dW) or
    #: ``"affine"`` (g(x) dW, g = B + A x of shape d × rank; options ``rank``, ``bias``, ``slope``)
    noise: Component = field(default_factory=lambda: Component("diagonal"))
    solver: str = "euler_maruyama"
    dt: float = 0.1
    #: data → model units, fitted on the training times (see :mod:`mfsde.model`): σ, dt, the
    #: loss's blur and the energy term are in model units. ``"global"``, ``"per_dim"`` or ``"none"``.
    standardize: str = "global"
    #: model time = (t − t₀) / unit: ``"mean_gap"`` (mean gap of the training times) or ``"none"``.
    time_scale: str = "mean_gap"
    #: the growth rate of a mass channel (:mod:`mfsde.drifts`): ``"none"`` (mass conserved),
    #: ``"mlp"`` (g(x)) or ``"population"`` (g(x, ρ) through a weighted kernel); the particles then
    #: carry log-weights d log w = g dt that every kernel and the loss count.
    growth: Component = field(default_factory=lambda: Component("none"))


@dataclass
class LossConfig:
    """Distribution loss at every training time plus ``energy_weight`` × path energy."""

    fit: Component = field(default_factory=lambda: Component("sinkhorn", {"p": 2, "blur": 0.1, "scaling": 0.7}))
    fit_weight: float = 1.0
    #: λ of the least-action term, in model units (scIMF: 1 in the data's own units). At 1 the
    #: energy pulls the fit towards standing still (benchmarks/fit_diagnostics.py); 0.01 is the
    #: measured default.
    energy_weight: float = 0.01
    #: weight of the energy per unit time over one mean gap *past* the last training time, where
    #: no snapshot constrains the drift: the least-action prior that, without data, cells stand
    #: still (as copying the last time point assumes). 0: the simulation stops at the last
    #: training time (the default).
    tail_weight: float = 0.0
    #: with a growth model and masses (``data.mass``): weight of the mass term, the mean over the
    #: training times of ((M̂_k − m_k) / m_k)², M̂ the model's and m the observed relative mass
    mass_weight: float = 1.0
    #: with a growth model: weight of the growth penalty ∫ Σ_i w̄_i g(x_i)² dt / T (CytoBridge's
    #: ∫ g² ρ, model units), which keeps g at zero where the data do not ask for growth
    growth_weight: float = 0.01


@dataclass
class TrainConfig:
    """scIMF's recipe (see ../shared/docs/scimf.md); every field can be overridden."""

    iterations: int = 3000
    n_particles: int = 512
    lr: float = 1e-3
    #: learning rate of a learned σ (``model.learn_sigma``; None: ``lr``): Adam moves log σ ~this much per step.
    sigma_lr: float | None = None
    #: learning rate of the interaction kernel's parameters (None: ``lr``). Adam moves each parameter by
    #: about this much per step, so a kernel whose outputs are its parameters (``radial`` with
    #: ``basis="linear"``: ψ at the nodes, model units) reaches forces of size F after ~F / inter_lr steps.
    inter_lr: float | None = None
    lr_step: int = 100
    lr_gamma: float = 0.9
    clip_grad_norm: float | None = 0.1
    n_targets: int | None = 1000
    #: independent replicas of ``n_particles`` simulated per iteration (over all ranks of a
    #: data-parallel job); the loss is their mean. Must be divisible by the world size.
    replicas: int = 1
    seed: int = 0
    log_every: int = 10
    #: write ``checkpoint.pt`` every this many iterations and/or ``checkpoint_seconds`` of wall time
    #: (``None`` turns either off), at the start, the end and on SIGINT/SIGTERM (``mfsde fit --resume``).
    checkpoint_every: int | None = 100
    checkpoint_seconds: float | None = 60.0
    #: stop after this many seconds of training steps (evaluation and checkpoint writes are not
    #: counted) or after ``iterations``, whichever comes first; ``None``: no time limit.
    time_budget: float | None = None
    #: the clock ``time_budget`` counts: ``"wall"`` (elapsed seconds of training steps) or ``"cpu"``
    #: (CPU seconds of the training process, all its threads: waiting for a core is not counted, but
    #: threads that spin are; benchmarks/README.md). Both are recorded per iteration (``seconds``,
    #: ``cpu_seconds``).
    time_clock: str = "wall"
    #: every this many iterations also record exact W1 (data units, ``eval_particles`` cells from t₀)
    #: at every time in ``history.jsonl`` (``w1@k``, ``eval_seconds``); ``None``: never.
    eval_every: int | None = None
    eval_particles: int = 1000
    ema: float = 0.0  #: weight averaging decay (:mod:`mfsde.training`; 0 off, 0.99 ≈ last 100 its)
    #: training simulations use the random batch method (Jin, Li & Liu 2020): at every step particles
    #: interact only within random groups of this size (O(N·B) pairs; B ≥ N: every pair); evaluation exact.
    random_batch: int | None = None
    #: the training method (:mod:`mfsde.training`): ``"simulation"`` (simulate the particles and
    #: fit each training snapshot), ``"flow_matching"`` (simulation-free: regress the drift on Brownian
    #: bridges between OT-coupled cells of consecutive training snapshots) or
    #: ``"flow_matching+simulation"`` (``fm_iterations`` of flow matching, then simulation)
    method: str = "simulation"
    #: flow matching: cells per bridged population (the population every kernel attends to)
    fm_batch: int = 256
    #: flow matching: bridged populations (times) per iteration and training population
    fm_times: int = 8
    #: flow matching: the coupling of consecutive snapshots, ``"exact"`` (OT), ``"sinkhorn"``
    #: (entropic OT with ε = σ²Δ: the Schrödinger bridge), ``"independent"`` or ``"global"`` (pairs
    #: drawn from the exact OT plan between up to ``fm_plan_cells`` cells of each whole snapshot, solved
    #: once per gap, as McCann's baseline pairs them: no minibatch's error in the pairs)
    fm_coupling: str = "exact"
    #: flow matching, ``fm_coupling "global"``: cells of each snapshot (at most; drawn once per gap with
    #: a generator of their own) between which the exact OT plan is solved, once per gap
    fm_plan_cells: int = 4000
    #: ``"flow_matching+simulation"``: flow-matching iterations before the simulation loss takes over
    fm_iterations: int = 500
    #: ``"flow_matching+simulation"`` with a ``time_budget``: the share of the budget (0 < share < 1)
    #: spent on flow matching, then simulation (``fm_iterations`` still caps the first phase);
    #: None: the switch comes after ``fm_iterations`` only
    fm_share: float | None = None
    #: ``"flow_matching+simulation"``: restart the step-size schedule from ``lr`` when simulation
    #: takes over (flow matching's many cheap iterations have decayed it by then)
    fm_restart_lr: bool = False
    #: flow matching: the bridges' mean path, ``"linear"`` (the straight line between coupled cells)
    #: or ``"metric"`` (each pair's geodesic in a data-density metric built from the gap's two
    #: snapshots, as Metric Flow Matching: paths bend towards where cells are)
    fm_interpolant: str = "linear"
    #: ``fm_interpolant "metric"``: RBF centres (k-means) of each gap's metric
    fm_metric_centers: int = 150
    #: ``fm_interpolant "metric"``: width of each centre in units of its cluster's spread (κ)
    fm_metric_kappa: float = 3.0
    #: ``fm_interpolant "metric"``: the floor ε under the density h; moving off the data costs up
    #: to 1/ε times more than on it
    fm_metric_eps: float = 0.1
    #: where the training simulations start: ``"first"`` (one path from the first snapshot through
    #: every training time, scIMF's) or ``"every"`` (one path per gap between consecutive training
    #: times, started from the gap's first observed cells and fitted to the next: each transition is
    #: learned from real cells, as the previous-day protocol predicts it) or ``"mixed"`` (the two in turn:
    #: ``"first"`` on odd iterations, ``"every"`` on even ones). Same steps and fits per iteration.
    starts: str = "first"


@dataclass
class EvalConfig:
    n_particles: int = 2000
    seed: int = 0


@dataclass
class DataConfig:
    """What the data mean beyond their cells."""

    #: what a snapshot's size means. ``"normalised"``: nothing (only each snapshot's law is
    #: fitted; the model may conserve mass). ``"counts"``: the cell counts are proportional to the
    #: population's size, so the mass at time k relative to the first time is n_k / n_0. A list:
    #: the population's size at every time point (any positive numbers, divided by the first).
    #: Masses need a growth model (``model.growth``).
    mass: str | list[float] = "normalised"


@dataclass
class Config:
    """Everything that defines a run: model, loss, training and evaluation settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    preset: str | None = None
    data: DataConfig = field(default_factory=DataConfig)

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = asdict(self)
        out["model"]["intra"] = self.model.intra.to_dict()
        out["model"]["inter"] = self.model.inter.to_dict()
        out["model"]["noise"] = self.model.noise.to_dict()
        out["model"]["growth"] = self.model.growth.to_dict()
        out["loss"]["fit"] = self.loss.fit.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        data = copy.deepcopy(data)
        _check_keys(data, cls, "config")
        model = data.get("model", {})
        _check_keys(model, ModelConfig, "config.model")
        for key in ("intra", "inter", "noise", "growth"):
            if key in model:
                model[key] = Component.from_any(model[key], f"config.model.{key}")
        loss = data.get("loss", {})
        _check_keys(loss, LossConfig, "config.loss")
        if "fit" in loss:
            loss["fit"] = Component.from_any(loss["fit"], "config.loss.fit")
        train, ev = data.get("train", {}), data.get("eval", {})
        _check_keys(train, TrainConfig, "config.train")
        _check_keys(ev, EvalConfig, "config.eval")
        dat = data.get("data", {})
        _check_keys(dat, DataConfig, "config.data")
        cfg = cls(
            ModelConfig(**model),
            LossConfig(**loss),
            TrainConfig(**train),
            EvalConfig(**ev),
            data.get("preset"),
            DataConfig(**dat),
        )
        for section in ("model", "loss", "train", "eval", "data"):
            _check_types(getattr(cfg, section), f"{section}.")
        _check_types(cfg, "", only=("preset",))
        cfg.validate()
        return cfg

    def save(self, path: str | Path) -> Path:
        """Write JSON (``.json``) or TOML (``.toml``)."""
        path = Path(path)
        if path.suffix == ".toml":
            import tomli_w

            data = self.to_dict()
            unset = _none_paths(data)  # TOML has no null: list the None-valued keys instead
            body = _drop_none(data)
            if unset:
                body["unset"] = unset
            write_text_atomic(path, tomli_w.dumps(body))
        elif path.suffix == ".json":
            write_text_atomic(path, json.dumps(self.to_dict(), indent=2))
        else:
            raise ValueError(f"config path must end in .json or .toml, got {path.name!r}")
        return path

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None) -> Config:
        """A config file (JSON or TOML). A file that names a ``preset`` starts from it, built for
        the file's ``model.dim``, else for ``dim`` (so the preset's dimension rules apply: heads,
        LayerNorm at low d); ``dim`` also fills a missing ``model.dim``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        if path.suffix == ".toml":
            data = toml_loads(path.read_text())
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            raise ValueError(f"config path must end in .json or .toml, got {path.name!r}")
        unset = data.pop("unset", [])
        if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
            raise ValueError(f"'unset' in {str(path)!r} must be a list of dotted keys, got {unset!r}")
        d = (data.get("model") or {}).get("dim", dim)
        if data.get("preset"):
            from mfsde.config._presets import preset  # the presets build Configs: imported on use

            base = (preset(data["preset"]) if d is None else preset(data["preset"], d)).to_dict()
        else:
            base = cls().to_dict()
            if d is not None:
                base["model"]["dim"] = d
        cfg = cls.from_dict(merge(base, data))
        return cfg.override(**{k: None for k in unset}) if unset else cfg

    def override(self, **dotted: Any) -> Config:
        """A copy with ``{"train.iterations": 10, "model.inter.heads": 5}``-style overrides.

        Changing a component's name (``"model.inter.name": "rbf"``) drops the old component's
        options, as :meth:`load` does; options of the new one given in the same call apply
        (name changes are applied first)."""
        data = self.to_dict()
        for key, value in sorted(dotted.items(), key=lambda kv: not kv[0].endswith(".name")):
            node, parts = data, key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise KeyError(f"unknown config section {key!r}")
                node = node[p]
            if parts[-1] == "name" and "name" in node and node["name"] != value:
                node.clear()  # a new component: the old one's options do not apply to it
            node[parts[-1]] = value
        return Config.from_dict(data)

    def _validate_mass(self) -> None:
        """``data.mass``, ``model.growth`` and what they need of the loss, kernel, solver and training."""
        from mfsde.drifts import GROWTH_MODELS
        from mfsde.interactions import INTERACTIONS
        from mfsde.losses import LOSSES
        from mfsde.registry import check_options
        from mfsde.solvers import SOLVERS

        m, g, mass = self.model, self.model.growth, self.data.mass
        if isinstance(mass, str):
            if mass not in MASS_MODES:
                raise ValueError(
                    f"data.mass must be one of {', '.join(MASS_MODES)} or a list of sizes per time point; got {mass!r}"
                )
        elif not (
            isinstance(mass, (list, tuple))
            and mass
            and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in mass
            )
        ):
            raise ValueError(f"data.mass sizes must be positive finite numbers, one per time point; got {mass!r}")
        for name in ("mass_weight", "growth_weight", "tail_weight"):
            v = getattr(self.loss, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"loss.{name} must be a finite number >= 0, got {v!r}")
        reach = self.loss.fit.options.get("reach")
        if g.name == "none":
            if g.options:
                raise ValueError(f"model.growth 'none' takes no options, got {sorted(g.options)}")
            if mass != "normalised":
                raise ValueError(
                    f"data.mass {mass!r} needs a growth model (model.growth 'mlp' or 'population'): "
                    "without one the model's mass stays 1"
                )
            if reach is not None:
                raise ValueError("loss.fit reach (unbalanced transport) needs a growth model (model.growth)")
            return
        check_options(GROWTH_MODELS.get(g.name), {"dim": m.dim, **g.options}, f"growth model {g.name!r}")
        loss_cls = LOSSES.get(self.loss.fit.name)
        if not getattr(loss_cls, "weighted", False):
            can = ", ".join(n for n in LOSSES.names() if getattr(LOSSES.get(n), "weighted", False))
            raise ValueError(
                f"model.growth needs a loss that sees particle weights; loss.fit {self.loss.fit.name!r} does not "
                f"(losses that do: {can})"
            )
        if not getattr(INTERACTIONS.get(m.inter.name), "weighted", False):
            raise ValueError(f"model.growth needs a kernel that accepts particle weights; {m.inter.name!r} does not")
        if not hasattr(SOLVERS.get(m.solver), "weighted_step"):
            raise ValueError(f"model.growth needs a solver with a mass channel; {m.solver!r} has none")
        if self.train.random_batch is not None:
            raise ValueError("model.growth does not work with train.random_batch: random groups do not carry weights")
        if self.train.method == "flow_matching":
            raise ValueError(
                "model.growth is trained by the simulation loss: use train.method 'simulation' or "
                "'flow_matching+simulation' (flow matching then trains the drift only)"
            )

    def validate(self) -> None:
        """Check registry names and values now, before anything is trained."""
        from mfsde.drifts import INTRA_DRIFTS
        from mfsde.interactions import INTERACTIONS
        from mfsde.losses import LOSSES
        from mfsde.registry import check_options
        from mfsde.solvers import SOLVERS
        from mfsde.solvers._noise_models import NOISES

        m = self.model
        if not isinstance(m.dim, int) or m.dim < 1:
            raise ValueError(f"model.dim must be a positive int, got {m.dim!r}")
        if isinstance(m.sigma, (list, tuple)) and len(m.sigma) != m.dim:
            raise ValueError(f"model.sigma has {len(m.sigma)} entries but model.dim = {m.dim}")
        if m.sigma_units not in SIGMA_UNITS:
            raise ValueError(f"model.sigma_units must be one of {', '.join(SIGMA_UNITS)}; got {m.sigma_units!r}")
        if m.sigma_units == "spread" and (isinstance(m.sigma, (list, tuple)) or m.noise.name != "diagonal"):
            raise ValueError(
                "model.sigma_units 'spread' shares one σ over the dimensions: it needs a single number "
                f"model.sigma and model.noise 'diagonal', got sigma {m.sigma!r} and noise {m.noise.name!r}"
            )
        sig = m.sigma if isinstance(m.sigma, (list, tuple)) else [m.sigma]
        if m.learn_sigma and m.noise.name == "diagonal" and not all(isinstance(v, (int, float)) and v > 0 for v in sig):
            raise ValueError(f"model.learn_sigma needs every model.sigma > 0 (it is trained as log σ), got {m.sigma!r}")
        check_options(
            INTRA_DRIFTS.get(m.intra.name), {"dim": m.dim, **m.intra.options}, f"intra drift {m.intra.name!r}"
        )
        check_options(
            INTERACTIONS.get(m.inter.name), {"dim": m.dim, **m.inter.options}, f"interaction {m.inter.name!r}"
        )
        if {"dim", "sigma", "learnable"} & set(m.noise.options):
            raise ValueError(
                "model.noise options may not set dim, sigma or learnable: use model.dim, model.sigma, model.learn_sigma"
            )
        check_options(NOISES.get(m.noise.name), {"dim": m.dim, **m.noise.options}, f"noise {m.noise.name!r}")
        if m.solver == "heun" and m.noise.name != "diagonal":
            raise ValueError(
                f"model.solver 'heun' takes constant noise only; model.noise {m.noise.name!r} needs 'euler_maruyama'"
            )
        check_options(LOSSES.get(self.loss.fit.name), self.loss.fit.options, f"loss {self.loss.fit.name!r}")
        SOLVERS.get(m.solver)
        self._validate_mass()
        if not m.dt > 0:
            raise ValueError(f"model.dt must be > 0, got {m.dt!r}")
        from mfsde.model._scaling import STANDARDIZE, TIME_SCALES

        if m.standardize not in STANDARDIZE:
            raise ValueError(f"model.standardize must be one of {', '.join(STANDARDIZE)}; got {m.standardize!r}")
        if m.time_scale not in TIME_SCALES:
            raise ValueError(f"model.time_scale must be one of {', '.join(TIME_SCALES)}; got {m.time_scale!r}")
        t = self.train
        for name in ("iterations", "n_particles", "lr_step", "replicas"):
            if not isinstance(getattr(t, name), int) or getattr(t, name) < 1:
                raise ValueError(f"train.{name} must be a positive int, got {getattr(t, name)!r}")
        if not t.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {t.lr!r}")
        if t.sigma_lr is not None and not (isinstance(t.sigma_lr, (int, float)) and t.sigma_lr > 0):
            raise ValueError(f"train.sigma_lr must be > 0 or None, got {t.sigma_lr!r}")
        if t.sigma_lr is not None and not self.model.learn_sigma:
            raise ValueError("train.sigma_lr is set but model.learn_sigma is false: σ is not trained")
        if t.inter_lr is not None and not (isinstance(t.inter_lr, (int, float)) and t.inter_lr > 0):
            raise ValueError(f"train.inter_lr must be > 0 or None, got {t.inter_lr!r}")
        if t.inter_lr is not None and self.model.inter.name == "none":
            raise ValueError("train.inter_lr is set but model.inter is 'none': there is no kernel to train")
        if t.time_budget is not None and (
            isinstance(t.time_budget, bool)
            or not isinstance(t.time_budget, (int, float))
            or not math.isfinite(t.time_budget)
            or t.time_budget <= 0
        ):
            raise ValueError(f"train.time_budget must be a positive number of seconds or None, got {t.time_budget!r}")
        if t.time_clock not in TIME_CLOCKS:
            raise ValueError(f"train.time_clock must be one of {', '.join(TIME_CLOCKS)}; got {t.time_clock!r}")
        if t.checkpoint_seconds is not None and not (math.isfinite(t.checkpoint_seconds) and t.checkpoint_seconds > 0):
            raise ValueError(
                f"train.checkpoint_seconds must be a positive number of seconds or None, got {t.checkpoint_seconds!r}"
            )
        if t.checkpoint_every is not None and t.checkpoint_every < 1:
            raise ValueError(f"train.checkpoint_every must be a positive int or None, got {t.checkpoint_every!r}")
        if isinstance(t.ema, bool) or not isinstance(t.ema, (int, float)) or not 0 <= t.ema < 1:
            raise ValueError(f"train.ema must be a number in [0, 1) (0 = off), got {t.ema!r}")
        for name in ("eval_every", "eval_particles", "random_batch"):
            v = getattr(t, name)
            if not (v is None and name != "eval_particles") and (
                isinstance(v, bool) or not isinstance(v, int) or v < 1
            ):
                raise ValueError(
                    f"train.{name} must be a positive int{' or None' if name != 'eval_particles' else ''}, got {v!r}"
                )
        if t.random_batch is not None and (t.random_batch < 2 or self.model.inter.name == "none"):
            raise ValueError(
                f"train.random_batch must be >= 2 with an interaction (model.inter {m.inter.name!r}), "
                f"got {t.random_batch}"
            )
        self._validate_method()

    def _validate_method(self) -> None:
        """The training method's keys (``train.method``, ``train.fm_*``)."""
        from mfsde.training._flow_matching import COUPLINGS, INTERPOLANTS, TRAINING_METHODS, check_cost_size

        t, m = self.train, self.model
        if t.method not in TRAINING_METHODS:
            raise ValueError(f"train.method must be one of {', '.join(TRAINING_METHODS)}; got {t.method!r}")
        for name in ("fm_batch", "fm_times", "fm_iterations", "fm_plan_cells"):
            v = getattr(t, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"train.{name} must be a positive int, got {v!r}")
        if t.fm_coupling not in COUPLINGS:
            raise ValueError(f"train.fm_coupling must be one of {', '.join(COUPLINGS)}; got {t.fm_coupling!r}")
        if t.fm_plan_cells != TrainConfig.fm_plan_cells and t.fm_coupling != "global":
            raise ValueError(f"train.fm_plan_cells applies to train.fm_coupling 'global' only; got {t.fm_coupling!r}")
        if t.fm_interpolant not in INTERPOLANTS:
            raise ValueError(f"train.fm_interpolant must be one of {', '.join(INTERPOLANTS)}; got {t.fm_interpolant!r}")
        if isinstance(t.fm_metric_centers, bool) or not isinstance(t.fm_metric_centers, int) or t.fm_metric_centers < 1:
            raise ValueError(f"train.fm_metric_centers must be a positive int, got {t.fm_metric_centers!r}")
        for name in ("fm_metric_kappa", "fm_metric_eps"):
            v = getattr(t, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"train.{name} must be a positive number, got {v!r}")
        if t.fm_interpolant == "linear":
            default = TrainConfig()
            for name in ("fm_metric_centers", "fm_metric_kappa", "fm_metric_eps"):
                if getattr(t, name) != getattr(default, name):
                    raise ValueError(
                        f"train.{name} applies to train.fm_interpolant 'metric' only; got {t.fm_interpolant!r}"
                    )
        if t.method == "simulation":  # flow matching's settings would be ignored: refused
            default = TrainConfig()
            for name in ("fm_interpolant", "fm_coupling", "fm_plan_cells", "fm_batch", "fm_times", "fm_iterations"):
                if getattr(t, name) != getattr(default, name):
                    raise ValueError(
                        f"train.{name} {getattr(t, name)!r} shapes flow matching's bridges; train.method "
                        "'simulation' has none (use 'flow_matching' or 'flow_matching+simulation')"
                    )
        if t.fm_share is not None:
            if isinstance(t.fm_share, bool) or not isinstance(t.fm_share, (int, float)) or not 0 < t.fm_share < 1:
                raise ValueError(f"train.fm_share must be a number in (0, 1) or None, got {t.fm_share!r}")
            if t.method != "flow_matching+simulation":
                raise ValueError(
                    f"train.fm_share applies to train.method 'flow_matching+simulation' only; got {t.method!r}"
                )
            if t.time_budget is None:
                raise ValueError("train.fm_share is a share of train.time_budget: set train.time_budget as well")
        if t.fm_restart_lr and t.method != "flow_matching+simulation":
            raise ValueError(
                f"train.fm_restart_lr applies to train.method 'flow_matching+simulation' only; got {t.method!r}"
            )
        if t.starts not in STARTS:
            raise ValueError(f"train.starts must be one of {', '.join(STARTS)}; got {t.starts!r}")
        if t.starts != "first":
            if t.method == "flow_matching":
                raise ValueError(
                    f"train.starts {t.starts!r} sets where simulations start; "
                    "train.method 'flow_matching' never simulates"
                )
            if float(self.loss.tail_weight) > 0:
                raise ValueError(
                    "loss.tail_weight needs train.starts 'first' (the tail follows the path from the first time)"
                )
        if t.method == "simulation":
            return
        if t.fm_batch < 2 and m.inter.name != "none":
            raise ValueError(
                f"train.fm_batch must be >= 2 with an interaction kernel (model.inter {m.inter.name!r}): "
                f"a population of {t.fm_batch} cell has nobody to interact with"
            )
        if t.fm_coupling == "global":
            check_cost_size(t.fm_plan_cells, t.fm_plan_cells, "train.fm_plan_cells")
        elif t.fm_coupling != "independent":
            check_cost_size(t.fm_batch, t.fm_batch)
        if m.noise.name != "diagonal":
            raise ValueError(
                f"train.method {t.method!r} needs model.noise 'diagonal' (a Brownian bridge of constant σ); "
                f"got {m.noise.name!r}"
            )
        if m.learn_sigma and t.method == "flow_matching":
            raise ValueError(
                "model.learn_sigma needs train.method 'simulation' or 'flow_matching+simulation': "
                "flow matching bridges with a fixed σ and does not learn it"
            )
