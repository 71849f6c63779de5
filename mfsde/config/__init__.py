"""Configs: plain, serialisable settings that build a model by registry names, and named presets.

```pycon
>>> cfg = mfsde.preset("scimf", dim=50).override(**{"train.iterations": 500})
>>> cfg.save("scimf.toml"); mfsde.config.Config.load("scimf.toml")
```

A :class:`Config` round-trips through ``dict``/JSON/TOML and validates across components; unknown
keys, registry names and bad values raise one-line errors listing what exists.
"""

from mfsde.config._presets import PRESETS, preset
from mfsde.config._schema import Component, Config, DataConfig, EvalConfig, LossConfig, ModelConfig, TrainConfig

__all__ = ["Component", "ModelConfig", "LossConfig", "TrainConfig", "EvalConfig", "DataConfig", "PRESETS"]
