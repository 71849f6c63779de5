"""Drifts: single-particle parts (registry ``INTRA_DRIFTS``) and :class:`MeanFieldDrift`."""
from ..registry import Registry
from .intra import IntraDrift, LinearDrift, MLPDrift, PotentialDrift, ZeroDrift, mlp
from .mean_field import MeanFieldDrift

INTRA_DRIFTS = Registry(
    "intra drift", {"mlp": MLPDrift, "zero": ZeroDrift, "potential": PotentialDrift, "linear": LinearDrift}
)


def build_intra(name: str, /, dim: int, **options) -> IntraDrift:
    """Build the single-particle drift registered as ``name``."""
    return INTRA_DRIFTS.build(name, dim=dim, **options)


__all__ = [
    "INTRA_DRIFTS", "build_intra", "IntraDrift", "MLPDrift", "ZeroDrift", "PotentialDrift",
    "LinearDrift", "MeanFieldDrift", "mlp",
]
