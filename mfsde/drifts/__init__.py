"""Drifts: single-particle parts (registry ``INTRA_DRIFTS``), :class:`MeanFieldDrift`, and the
growth rates of a mass channel (registry ``GROWTH_MODELS``)."""

from mfsde.drifts._growth import GROWTH_MODELS, GrowthRate, MLPGrowth, PopulationGrowth, build_growth
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
    "GROWTH_MODELS",
    "build_growth",
    "GrowthRate",
    "MLPGrowth",
    "PopulationGrowth",
    "mlp",
]
