"""Several populations (conditions) of snapshots, and tasks that hold out whole populations.

A mean-field model earns its keep when the data hold *many initial populations* — replicates,
donors, seeding densities, mixing experiments: from one initial population ρ_t is a fixed
function of time and an interaction f(x, ρ_t) can hide in a time-dependent f(x, t); across
populations it cannot. :class:`Populations` is an ordered collection of
:class:`~mfsde.data.Snapshots` of the same dimension, one per population, each with its own time
points (they may differ). :class:`PopulationTask` says which populations train and which are
held out, and which time points of the training populations are held out too.

During training every population is simulated from its own first snapshot as an independent
particle system (particles interact only within their population); a held-out population is
predicted from its own first snapshot and scored at all its later times.

>>> pops = Populations({"dense": snaps_a, "sparse": snaps_b, "mixed": snaps_c})
>>> task = PopulationTask("all", heldout_populations=["mixed"])
>>> result = mfsde.fit(config, pops, task)
>>> mfsde.evaluate(result.model, pops, task)["w1"]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mfsde.data._snapshots import SnapshotError, Snapshots
from mfsde.data._tasks import Task, TaskError, get_task


class PopulationError(SnapshotError):
    """Invalid populations (unknown or duplicate names, mismatched dimensions, a held-out
    population that also trains…); the message names the population."""


class Populations(Mapping):
    """An ordered mapping ``name → Snapshots`` of populations with the same dimension ``d``.

    Args:
        populations: a mapping ``{name: Snapshots}`` or a sequence of ``(name, Snapshots)``.
            Each population needs at least 2 time points (:class:`Snapshots` checks it; errors
            name the population). Feature names, where given, must agree.
        name: name of the data set.

    ``len(p)``, iteration (over names) and ``p[name]`` work like a dict; ``p.dim``, ``p.names``,
    ``p.feature_names``, ``p.n_cells``.
    """

    def __init__(self, populations, name: str = ""):
        items = list(populations.items()) if isinstance(populations, Mapping) else list(populations)
        if not items:
            raise PopulationError("populations: need at least one population, got none")
        self._pops: dict[str, Snapshots] = {}
        dim = feats = None
        first = None
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise PopulationError(f"populations: expected (name, Snapshots) pairs, got {item!r:.80}")
            key, snaps = item
            key = str(key)
            if not key:
                raise PopulationError("populations: a population has an empty name")
            if key in self._pops:
                raise PopulationError(f"populations: duplicate population name {key!r}")
            if not isinstance(snaps, Snapshots):
                raise PopulationError(f"population {key!r}: expected mfsde.data.Snapshots, got {type(snaps).__name__}")
            if dim is None:
                dim, feats, first = snaps.dim, snaps.feature_names, key
            elif snaps.dim != dim:
                raise PopulationError(
                    f"population {key!r} has dimension {snaps.dim} but population {first!r} has {dim}"
                )
            elif feats is not None and snaps.feature_names is not None and snaps.feature_names != feats:
                raise PopulationError(
                    f"population {key!r} has features {snaps.feature_names[:4]}… but population "
                    f"{first!r} has {feats[:4]}…"
                )
            self._pops[key] = snaps
            feats = feats if feats is not None else snaps.feature_names
        self.name = str(name)
        self._feature_names = feats

    # -- mapping -----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Snapshots:
        try:
            return self._pops[str(name)]
        except KeyError:
            raise KeyError(f"unknown population {name!r}; populations are {self.names}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._pops)

    def __len__(self) -> int:
        return len(self._pops)

    # -- summary -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._pops)

    @property
    def dim(self) -> int:
        return next(iter(self._pops.values())).dim

    @property
    def feature_names(self) -> list[str] | None:
        return self._feature_names

    @property
    def n_cells(self) -> int:
        return int(sum(s.n_cells for s in self._pops.values()))

    def check_names(self, names: Sequence[str], what: str = "population") -> list[str]:
        """``names`` as strings, each a known population (else :class:`PopulationError` naming it)."""
        if isinstance(names, str):
            names = [names]
        out = [str(n) for n in names]
        unknown = [n for n in out if n not in self._pops]
        if unknown:
            raise PopulationError(f"unknown {what}(s) {unknown}; populations are {self.names}")
        dup = sorted({n for n in out if out.count(n) > 1})
        if dup:
            raise PopulationError(f"{what}(s) {dup} given twice")
        return out

    def subset(self, names: Sequence[str]) -> Populations:
        """The populations ``names`` (in the given order)."""
        return Populations([(n, self._pops[n]) for n in self.check_names(names)], self.name)

    def to_dict(self) -> dict:
        """JSON summary (no cell data)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "feature_names": self.feature_names,
            "populations": {k: {"times": s.times.tolist(), "counts": s.counts} for k, s in self._pops.items()},
        }

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: T={s.n_times}" for k, s in list(self._pops.items())[:6])
        more = ", …" if len(self) > 6 else ""
        head = f"Populations({self.name!r}, " if self.name else "Populations("
        return f"{head}{len(self)} populations, d={self.dim}, {parts}{more}, total {self.n_cells} cells)"


@dataclass
class PredictTask:
    """How a held-out population is scored: started from its first snapshot (index 0, ``train``)
    and evaluated at every later index (``heldout``). Accepted wherever a task is (evaluation,
    baselines), never for training."""

    name: str
    train: list[int]
    heldout: list[int]

    @classmethod
    def for_population(cls, name: str, n_times: int) -> PredictTask:
        return cls(f"population:{name}", [0], list(range(1, int(n_times))))

    def to_dict(self) -> dict:
        return {"name": self.name, "train": list(self.train), "heldout": list(self.heldout)}


@dataclass
class PopulationTask:
    """Which populations train, which are held out, and which time points of the training
    populations are held out.

    Args:
        time_task: a task name or :class:`~mfsde.data.Task` applied to *every* training
            population's own time indices (``"all"``: no held-out time; ``"loo:2"``: index 2 of
            each training population held out). Errors name the population it does not fit.
        heldout_populations: names of populations never seen in training; each is predicted
            from its own first snapshot and scored at all its later times.
        train_populations: the training populations (default ``None``: every population not
            held out; populations in neither list are left out of training and evaluation).
    """

    time_task: str | Task = "all"
    heldout_populations: Sequence[str] = field(default_factory=tuple)
    train_populations: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.heldout_populations, str):
            self.heldout_populations = (self.heldout_populations,)
        self.heldout_populations = tuple(str(p) for p in self.heldout_populations)
        if self.train_populations is not None:
            if isinstance(self.train_populations, str):
                self.train_populations = (self.train_populations,)
            self.train_populations = tuple(str(p) for p in self.train_populations)
            both = [p for p in self.train_populations if p in self.heldout_populations]
            if both:
                raise PopulationError(f"population(s) {both} are both training and held-out populations")
        if not isinstance(self.time_task, (str, Task)):
            raise TaskError(f"time_task must be a task name or a Task, got {type(self.time_task).__name__}")

    @property
    def name(self) -> str:
        base = self.time_task if isinstance(self.time_task, str) else self.time_task.name
        return base + (f"|heldout_populations:{','.join(self.heldout_populations)}" if self.heldout_populations else "")

    def training_names(self, pops: Populations) -> list[str]:
        if self.train_populations is not None:
            return list(self.train_populations)
        return [n for n in pops.names if n not in self.heldout_populations]

    def resolve(self, pops: Populations) -> dict[str, Task | PredictTask]:
        """Per population: the :class:`Task` of a training population, the :class:`PredictTask`
        of a held-out one. Raises :class:`PopulationError` naming the offending population."""
        if not isinstance(pops, Populations):
            raise TypeError(f"a PopulationTask needs mfsde.data.Populations, got {type(pops).__name__}")
        held = pops.check_names(self.heldout_populations, "held-out population")
        train = pops.check_names(self.training_names(pops), "training population")
        if not train:
            raise PopulationError(f"every population is held out ({held}); at least one must train")
        out: dict[str, Task | PredictTask] = {}
        for n in pops.names:
            if n not in held and n not in train:
                continue
            if n in held:
                out[n] = PredictTask.for_population(n, pops[n].n_times)
                continue
            try:
                out[n] = get_task(self.time_task, pops[n].n_times)
            except (TaskError, KeyError) as e:
                msg = e.args[0] if e.args else str(e)
                raise PopulationError(f"population {n!r} ({pops[n].n_times} time points): {msg}") from None
        return out

    def to_dict(self) -> dict:
        tt = self.time_task if isinstance(self.time_task, str) else self.time_task.to_dict()
        return {
            "name": self.name,
            "time_task": tt,
            "heldout_populations": list(self.heldout_populations),
            "train_populations": None if self.train_populations is None else list(self.train_populations),
        }

    @classmethod
    def from_dict(cls, d: dict) -> PopulationTask:
        tt = d["time_task"]
        return cls(
            tt if isinstance(tt, str) else Task.from_dict(tt),
            d.get("heldout_populations", ()),
            d.get("train_populations"),
        )


def as_population_task(task) -> PopulationTask:
    """``task`` as a :class:`PopulationTask` (a name or :class:`Task` applies to every population)."""
    if isinstance(task, PopulationTask):
        return task
    if isinstance(task, (str, Task)):
        return PopulationTask(task)
    raise TypeError(f"task for populations must be a PopulationTask, a Task or a task name, got {type(task).__name__}")


def population_items(pops: Populations, task, times: Sequence[int] | None = None):
    """``[(name, per-population task, indices, held out?)]``: what is scored per population — a
    held-out population at all its later times, a training one at its held-out times (or, with
    ``times``, at those of ``times`` it has); populations with nothing to score are left out."""
    ptask = as_population_task(task)
    tasks = ptask.resolve(pops)
    if times is not None:
        longest = max(pops[n].n_times for n in tasks)
        bad = sorted({int(k) for k in times if not 0 <= int(k) < longest})
        if bad:
            raise ValueError(f"time indices {bad} out of range: the populations have at most {longest} time points")
    out = []
    for name, t in tasks.items():
        idx = (
            sorted(int(k) for k in t.heldout)
            if times is None
            else sorted(int(k) for k in times if 0 < int(k) < pops[name].n_times)
        )
        if idx:
            out.append((name, t, idx, name in ptask.heldout_populations))
    return ptask, out
