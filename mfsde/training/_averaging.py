"""Polyak averaging of parameters for ``train.ema``: the exponential moving average of the
weights along training, the model that :func:`mfsde.fit` returns when it is on."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch


class ParameterAverage:
    """Exponential moving average ``a ← d a + (1 − d) p`` of ``params`` with the warm-up
    ``d = min(decay, i / (9 + i))`` at iteration i (TensorFlow's ``num_updates`` rule), so that the
    first iterations do not pin the average to the initial weights.

    >>> avg = ParameterAverage(model.parameters(), decay=0.99)
    >>> avg.update(iteration)            # after each optimiser step
    >>> with avg.applied(): evaluate(model)
    """

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        self.params, self.decay = list(params), float(decay)
        self.values = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, iteration: int) -> None:
        d = min(self.decay, iteration / (9 + iteration))
        torch._foreach_lerp_(self.values, [p.detach() for p in self.params], 1.0 - d)

    @torch.no_grad()
    def _copy(self, values) -> None:
        for p, v in zip(self.params, values):
            p.copy_(v)

    @contextlib.contextmanager
    def applied(self):
        """Within the block the parameters hold the average; the raw values come back after."""
        raw = [p.detach().clone() for p in self.params]
        self._copy(self.values)
        try:
            yield
        finally:
            self._copy(raw)

    def apply(self) -> None:
        """Put the average into the parameters for good."""
        self._copy(self.values)

    def state(self) -> list[torch.Tensor]:
        return [v.clone() for v in self.values]

    @torch.no_grad()
    def load(self, values: Sequence[torch.Tensor]) -> None:
        if len(values) != len(self.values):
            raise ValueError(f"averaged state has {len(values)} tensors, the model {len(self.values)}")
        for a, v in zip(self.values, values):
            a.copy_(v)
