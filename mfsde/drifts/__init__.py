"""Drifts: single-particle parts (registry ``INTRA_DRIFTS``) and :class:`MeanFieldDrift`."""

from mfsde.drifts._intra import INTRA_DRIFTS, IntraDrift, LinearDrift, MLPDrift, PotentialDrift, ZeroDrift, mlp
from mfsde.drifts._mean_field import MeanFieldDrift


def build_intra(name: str, /, dim: int, **options) -> IntraDrift:
    """Build the single-particle drift registered as ``name``."""
    return INTRA_DRIFTS.build(name, dim=dim, **options)


__all__ = [
    "INTRA_DRIFTS",
    "build_intra",
    "IntraDrift",
    "MLPDrift",
    "ZeroDrift",
    "PotentialDrift",
    "LinearDrift",
    "MeanFieldDrift",
    "mlp",
]
