"""The loss registry (its own module so that every loss module can register itself)."""

from mfsde.registry import Registry

#: distribution loss name → class; register with ``@LOSSES.register("name")``
LOSSES = Registry("loss")
