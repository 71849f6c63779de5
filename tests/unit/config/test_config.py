"""Configs and registries: round trips, presets, partial files, overrides, errors that list
what exists, user-registered components."""

from __future__ import annotations

import json

import pytest
import torch

import mfsde
from mfsde import Config, preset
from mfsde.config import PRESETS, Component
from mfsde.config._validate import merge
from mfsde.interactions import INTERACTIONS, Interaction
from mfsde.model import build_model
from mfsde.registry import Registry

PRESET_NAMES = sorted(PRESETS)


#: what the default presets change from scIMF's recipe (``scimf_paper``), each measured in
#: benchmarks/fit_diagnostics.py: the scale transform, the energy weight, the target sub-sample;
#: and the interaction's initialisation (zero_init, benchmarks/populations.py)
SCIMF_CHANGES = {"model.standardize", "model.time_scale", "loss.energy_weight", "train.n_targets", "model.inter"}


def _tiny(cfg: Config) -> Config:
    """Shrink a preset so that building and running it is cheap."""
    return cfg.override(**{"model.intra.width": 8})


# -- presets and round trips --------------------------------------------------------------------------
def test_preset_names():
    assert isinstance(PRESETS, Registry) and "scimf" in PRESETS and "scimf_paper" in PRESETS
    with pytest.raises(KeyError, match=r"unknown preset 'scIMF'; available: " + ", ".join(PRESETS.names())):
        preset("scIMF")


def test_the_force_kernels_take_their_own_step_and_only_radial_averages():
    """`radial` trains ψ's node values (forces) at 0.1 and averages the weights to take that step's
    noise out (benchmarks/results/populations_radial_ema_all.md); `rbf`'s force amplitudes train at
    0.01 (benchmarks/results/populations_rbf_lr.md); every other preset is the scIMF recipe's plain
    Adam at train.lr."""
    r = preset("radial", dim=2).train
    assert (r.inter_lr, r.ema) == (0.1, 0.98)
    b = preset("rbf", dim=2).train
    assert (b.inter_lr, b.ema) == (0.01, 0.0)
    for name in set(PRESETS.names()) - {"radial", "rbf"}:
        t = preset(name, dim=2).train
        assert t.ema == 0.0, name
        assert t.inter_lr is None, name


def test_low_dim_scimf_trades_the_layer_norm_for_a_qk_bias():
    """At d <= 3 the LayerNorm is left out, and with it the source-only score term its shift
    gives; the preset puts that term back with qk_bias. The paper's recipe and the symmetric
    ablation stay bias-free, and higher dimensions keep scIMF's LayerNorm."""
    for d in (1, 2, 3):
        opts = preset("scimf", dim=d).model.inter.options
        assert opts["layer_norm"] is False and opts["qk_bias"] is True, d
        assert "qk_bias" not in preset("symmetric_qk", dim=d).model.inter.options
        assert "qk_bias" not in preset("scimf_paper", dim=d).model.inter.options
    opts = preset("scimf", dim=4).model.inter.options
    assert "layer_norm" not in opts and "qk_bias" not in opts
    assert build_model(preset("scimf", dim=2)).drift.inter.w_q.bias is not None


def test_scimf_starts_as_the_ito_model():
    """The scimf preset (and its symmetric ablation) zero the interaction's output layer, so at
    initialisation f_inter is exactly 0 at any population; the paper's recipe keeps scIMF's random
    initialisation."""
    torch.manual_seed(0)
    for name, d in (("scimf", 2), ("scimf", 3), ("scimf", 10), ("symmetric_qk", 4)):
        model = build_model(preset(name, dim=d))
        x = torch.randn(3, 17, d)
        assert torch.equal(model.drift.parts(x)["inter"], torch.zeros_like(x)), (name, d)
    x = torch.randn(17, 10)
    assert build_model(preset("scimf", dim=10)).drift.parts(x)["intra"].abs().sum() > 0  # not zeroed with it
    paper = build_model(preset("scimf_paper", dim=10))
    assert paper.drift.parts(x)["inter"].abs().sum() > 0


def test_a_user_preset_registers_by_name(registry_cleanup):
    @PRESETS.register("tiny_rbf")
    def tiny_rbf(dim):
        cfg = preset("rbf", dim).override(**{"train.iterations": 5})
        cfg.preset = "tiny_rbf"
        return cfg

    cfg = preset("tiny_rbf", dim=3)
    assert cfg.preset == "tiny_rbf" and cfg.train.iterations == 5 and cfg.model.inter.name == "rbf"


def test_scimf_paper_preset_is_the_paper_recipe():
    cfg = preset("scimf_paper")
    assert cfg.model.dim == 50 and cfg.model.dt == 0.1 and cfg.model.sigma == 0.1
    assert (cfg.model.standardize, cfg.model.time_scale) == ("none", "none")  # the data's own units
    assert cfg.model.intra == Component("mlp", {"width": 256, "depth": 2})
    assert cfg.model.inter == Component("attention", {"heads": 2, "dropout": 0.1})
    assert cfg.loss.fit == Component("sinkhorn", {"p": 2, "blur": 0.1, "scaling": 0.7})
    assert (cfg.loss.energy_weight, cfg.loss.fit_weight) == (1.0, 1.0)
    assert (cfg.train.lr, cfg.train.lr_step, cfg.train.lr_gamma, cfg.train.clip_grad_norm) == (1e-3, 100, 0.9, 0.1)
    assert (cfg.train.iterations, cfg.train.n_particles, cfg.train.n_targets) == (3000, 512, None)


def test_scimf_differs_from_the_paper_only_where_documented():
    """The default presets standardise and re-weight the energy term; the model is the paper's but for
    the attention's zero start and its dropout."""
    paper, cfg = preset("scimf_paper").to_dict(), preset("scimf").to_dict()
    changed = {
        f"{sec}.{k}"
        for sec in paper
        if isinstance(paper[sec], dict)
        for k in paper[sec]
        if paper[sec][k] != cfg[sec][k]
    }
    assert changed == SCIMF_CHANGES, changed
    assert cfg["model"]["inter"] == {**paper["model"]["inter"], "zero_init": True, "dropout": 0.0}  # at d = 50
    assert preset("symmetric_qk").model.inter.options["tie_qk"] is True
    assert preset("ito").model.inter.name == "none"


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_round_trips_dict_json_toml(name, tmp_path):
    cfg = preset(name, dim=4)
    assert cfg.preset == name
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain data
    assert Config.from_dict(d) == cfg
    assert Config.from_dict(d).to_dict() == d
    for suffix in (".json", ".toml"):
        path = cfg.save(tmp_path / f"cfg{suffix}")
        loaded = Config.load(path)
        assert loaded == cfg, suffix
        assert loaded.to_dict() == d
    # the flat component form and the {"name", "options"} form are both accepted
    nested = json.loads(json.dumps(d))
    nested["model"]["inter"] = {"name": cfg.model.inter.name, "options": dict(cfg.model.inter.options)}
    assert Config.from_dict(nested) == cfg


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_builds_and_runs(name):
    cfg = _tiny(preset(name, dim=4))
    model = build_model(cfg).eval()
    assert isinstance(model, mfsde.MeanFieldSDE)
    assert model.dim == 4 and model.dt == cfg.model.dt and model.solver == cfg.model.solver
    assert model.drift.inter is not None
    want_inter = {
        "scimf": "AttentionInteraction",
        "symmetric_qk": "AttentionInteraction",
        "ito": "NoInteraction",
        "scimf_paper": "AttentionInteraction",
        "rbf": "RBFInteraction",
        "radial": "RadialInteraction",
        "pairwise_mlp": "PairwiseMLPInteraction",
    }[name]
    assert type(model.drift.inter).__name__ == want_inter
    sol = model(torch.randn(2, 5, 4), [0.0, 0.2], seed=0)
    assert sol.xs.shape == (2, 2, 5, 4) and torch.isfinite(sol.xs).all()
    assert build_model(cfg.model).dim == 4  # a ModelConfig works too


def test_per_dimension_sigma_round_trips_and_builds(tmp_path):
    cfg = preset("ito", dim=3).override(**{"model.sigma": [0.1, 0.2, 0.3]})
    for suffix in (".json", ".toml"):
        assert Config.load(cfg.save(tmp_path / f"c{suffix}")) == cfg
    model = build_model(_tiny(cfg))
    torch.testing.assert_close(model.diffusion.constant(), torch.tensor([0.1, 0.2, 0.3]))


def test_explicit_none_round_trips_through_toml(tmp_path):
    cfg = preset("scimf").override(**{"train.clip_grad_norm": None})
    assert Config.load(cfg.save(tmp_path / "c.toml")) == cfg


def test_save_and_load_reject_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"config path must end in .json or .toml, got 'c.yaml'"):
        preset("ito").save(tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("model: {}")
    with pytest.raises(ValueError, match=r"config path must end in .json or .toml"):
        Config.load(tmp_path / "c.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Config.load(tmp_path / "missing.toml")


# -- partial files and overrides ------------------------------------------------------------------------
def test_partial_toml_is_merged_on_its_preset(tmp_path):
    path = tmp_path / "partial.toml"
    path.write_text('preset = "rbf"\n[model]\ndim = 3\n[model.inter]\nbandwidth = 2.0\n[train]\niterations = 5\n')
    cfg = Config.load(path)
    want = preset("rbf", dim=3)
    want.model.inter.options["bandwidth"] = 2.0
    want.train.iterations = 5
    assert cfg == want
    assert cfg.model.inter.options == {"n_kernels": 3, "bandwidth": 2.0}  # the preset's other options kept


def test_partial_toml_without_preset_uses_defaults_and_renamed_component_replaces(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[model]\ndim = 4\nsolver = "heun"\n[model.inter]\nname = "pairwise_mlp"\nwidth = 16\n')
    cfg = Config.load(path)
    assert cfg.preset is None and cfg.model.solver == "heun" and cfg.model.dim == 4
    assert cfg.model.inter == Component("pairwise_mlp", {"width": 16})  # no attention options leak in
    assert cfg.model.intra == Config().model.intra and cfg.train == Config().train


def test_partial_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"preset": "symmetric_qk", "model": {"dim": 6, "inter": {"heads": 3}}}))
    cfg = Config.load(path)
    assert cfg.model.inter == Component("attention", {"heads": 3, "dropout": 0.0, "tie_qk": True, "zero_init": True})


def test_merge():
    base = {"a": {"name": "x", "k": 1, "j": 2}, "b": 1}
    assert merge(base, {"a": {"k": 5}}) == {"a": {"name": "x", "k": 5, "j": 2}, "b": 1}
    assert merge(base, {"a": {"name": "y", "k": 5}}) == {"a": {"name": "y", "k": 5}, "b": 1}
    assert base == {"a": {"name": "x", "k": 1, "j": 2}, "b": 1}  # not mutated


def test_populations_default_and_round_trip(tmp_path):
    cfg = preset("scimf", dim=4)
    assert cfg.train.replicas == 1 and cfg.to_dict()["train"]["replicas"] == 1
    four = cfg.override(**{"train.replicas": 4})
    for suffix in (".json", ".toml"):
        assert Config.load(four.save(tmp_path / f"p{suffix}")).train.replicas == 4
    old = cfg.to_dict()
    del old["train"]["replicas"]  # configs written before the field existed
    assert Config.from_dict(old) == cfg


def test_overrides():
    cfg = preset("scimf", dim=4)
    new = cfg.override(**{"train.iterations": 10, "model.inter.heads": 1, "model.dt": 0.05, "preset": "mine"})
    assert new.train.iterations == 10 and new.model.inter.options["heads"] == 1 and new.model.dt == 0.05
    assert new.preset == "mine"
    assert cfg.train.iterations == 3000 and cfg.model.inter.options["heads"] == 2  # original untouched
    swapped = cfg.override(**{"model.inter": {"name": "rbf", "n_kernels": 2}})
    assert swapped.model.inter == Component("rbf", {"n_kernels": 2})
    assert cfg.override(**{"model.inter": "none"}).model.inter == Component("none")
    # renaming a component drops the old one's options (like Config.load); same-call options apply
    assert cfg.override(**{"model.inter.name": "rbf"}).model.inter == Component("rbf")
    both = cfg.override(**{"model.inter.n_kernels": 3, "model.inter.name": "rbf"})
    assert both.model.inter == Component("rbf", {"n_kernels": 3})
    assert cfg.override(**{"model.inter.name": "attention"}).model.inter == cfg.model.inter  # same name: kept
    with pytest.raises(KeyError, match=r"unknown config section 'modle.dim'"):
        cfg.override(**{"modle.dim": 3})
    with pytest.raises(KeyError, match=r"config.train has unknown key\(s\) \['iters'\]"):
        cfg.override(**{"train.iters": 3})
    with pytest.raises(
        TypeError, match=r"interaction 'attention' got unknown option\(s\) \['head'\]; accepted: .*'heads'"
    ):
        cfg.override(**{"model.inter.head": 1})


# -- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "patch, match",
    [
        (
            {"model": {"inter": {"name": "transformer"}}},
            r"unknown interaction 'transformer'; available: " + ", ".join(INTERACTIONS.names()),
        ),
        (
            {"model": {"intra": {"name": "resnet"}}},
            r"unknown intra drift 'resnet'; available: linear, mlp, potential, zero",
        ),
        ({"model": {"solver": "rk4"}}, r"unknown solver 'rk4'; available: euler_maruyama, heun"),
        ({"loss": {"fit": {"name": "w2"}}}, r"unknown loss 'w2'; available: mmd, sinkhorn"),
    ],
)
def test_unknown_registry_names_list_available(patch, match):
    with pytest.raises(KeyError, match=match):
        Config.from_dict(merge(preset("ito", dim=4).to_dict(), patch))


@pytest.mark.parametrize(
    "patch, match",
    [
        (
            {"model": {"inter": {"bogus": 1}}},
            r"interaction 'none' got unknown option\(s\) \['bogus'\]; accepted: \['dim'\]",
        ),
        (
            {"model": {"intra": {"widht": 8}}},
            r"intra drift 'mlp' got unknown option\(s\) \['widht'\]; "
            r"accepted: \['dim', 'width', 'depth', 'time_input'\]",
        ),
        ({"loss": {"fit": {"eps": 1}}}, r"loss 'sinkhorn' got unknown option\(s\) \['eps'\]; accepted: \['p', 'blur'"),
    ],
)
def test_unknown_options_list_accepted(patch, match):
    with pytest.raises(TypeError, match=match):
        Config.from_dict(merge(preset("ito", dim=4).to_dict(), patch))


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"modle": {}},
            r"config has unknown key\(s\) \['modle'\]; known: \['data', 'eval', 'loss', 'model', 'preset', 'train'\]",
        ),
        ({"model": {"dimension": 3}}, r"config.model has unknown key\(s\) \['dimension'\]"),
        ({"loss": {"weight": 1.0}}, r"config.loss has unknown key\(s\) \['weight'\]"),
        ({"train": {"epochs": 1}}, r"config.train has unknown key\(s\) \['epochs'\]"),
        ({"eval": {"n": 1}}, r"config.eval has unknown key\(s\) \['n'\]"),
    ],
)
def test_unknown_config_keys_raise(data, match):
    with pytest.raises(KeyError, match=match):
        Config.from_dict(data)


def test_unknown_key_in_file_raises(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('preset = "scimf"\n[train]\nepochs = 3\n')
    with pytest.raises(KeyError, match=r"config.train has unknown key\(s\) \['epochs'\]"):
        Config.load(path)


@pytest.mark.parametrize(
    "dotted, match",
    [
        ({"model.dim": 0}, r"model.dim must be a positive int, got 0"),
        ({"model.dt": 0.0}, r"model.dt must be > 0, got 0.0"),
        ({"model.dt": -0.1}, r"model.dt must be > 0"),
        ({"train.iterations": 0}, r"train.iterations must be a positive int"),
        ({"train.n_particles": -5}, r"train.n_particles must be a positive int"),
        ({"train.lr": 0.0}, r"train.lr must be > 0"),
        ({"train.replicas": 0}, r"train.replicas must be a positive int, got 0"),
        ({"model.sigma": [0.1, 0.2]}, r"model.sigma has 2 entries but model.dim = 4"),
        ({"model.inter.heads": 3}, r"heads must be a positive int dividing dim=4"),
        ({"train.random_batch": 0}, r"train.random_batch must be a positive int or None, got 0"),
        (
            {"train.random_batch": 1},
            r"train.random_batch must be >= 2 with an interaction \(model.inter 'attention'\), got 1",
        ),
        (
            {"train.random_batch": 8, "model.inter": "none"},
            r"train.random_batch must be >= 2 with an interaction \(model.inter 'none'\)",
        ),
    ],
)
def test_bad_values_raise(dotted, match):
    cfg = preset("scimf", dim=4)
    with pytest.raises(ValueError, match=match):
        build_model(cfg.override(**dotted))


@pytest.mark.parametrize(
    "dotted, match",
    [
        ({"model.dim": 2.5}, r"config key model.dim expects an integer, got 2.5"),
        ({"train.replicas": 1.5}, r"config key train.replicas expects an integer, got 1.5"),
        ({"train.lr": "fast"}, r"config key train.lr expects a number, got 'fast'"),
        ({"train.n_targets": "all"}, r"config key train.n_targets expects an integer or unset \(null\), got 'all'"),
        ({"model.sigma": [0.1, "x", 0.1, 0.1]}, r"config key model.sigma expects a number or a list of numbers"),
        ({"model.solver": 3}, r"config key model.solver expects a string, got 3"),
        ({"train.iterations": True}, r"config key train.iterations expects an integer, got True"),
    ],
)
def test_wrong_types_name_the_key_and_the_type(dotted, match):
    """`--set train.lr=fast` must say which key wants what, not fail inside arithmetic later."""
    with pytest.raises(TypeError, match=match):
        preset("scimf", dim=4).override(**dotted)


def test_config_type_errors():
    with pytest.raises(TypeError, match="config must be a dict"):
        Config.from_dict([("model", {})])
    with pytest.raises(TypeError, match="config.model must be a table/dict"):
        Config.from_dict({"model": 3})
    with pytest.raises(ValueError, match=r"config.model.inter needs a 'name' key"):
        Config.from_dict({"model": {"inter": {"heads": 2}}})
    with pytest.raises(TypeError, match=r"config.model.intra must be a name, a dict with 'name', or a Component"):
        Config.from_dict({"model": {"intra": 3}})


# -- registries ------------------------------------------------------------------------------------------
def test_registry_register_decorator_duplicates():
    reg = Registry("widget")

    class A:
        def __init__(self, size: int = 1):
            self.size = size

    assert reg.register("a", A) is A

    @reg.register("b")
    def make_b(x=0):
        return ("b", x)

    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and "a" in reg and "c" not in reg
    assert reg.get("a") is A and reg.build("a", size=3).size == 3 and reg.build("b", x=2) == ("b", 2)
    assert reg.register("a", A) is A  # the same object again is fine
    with pytest.raises(KeyError, match=r"widget 'a' is already registered .* pass overwrite=True"):
        reg.register("a", lambda: None)
    with pytest.raises(KeyError, match=r"widget 'a' is already registered"):
        reg.register("a")(make_b)
    reg.register("a", make_b, overwrite=True)
    assert reg.get("a") is make_b
    with pytest.raises(KeyError, match=r"unknown widget 'c'; available: a, b"):
        reg.get("c")
    with pytest.raises(TypeError, match=r"widget 'b' got unknown option\(s\) \['y'\]; accepted: \['x'\]"):
        reg.build("b", y=1)
    with pytest.raises(TypeError, match="widget name must be a non-empty string"):
        reg.register("", A)
    assert "widget" in repr(reg)

    @reg.register("kw")
    def anything(**kw):
        return kw

    assert reg.build("kw", q=1) == {"q": 1}  # **kwargs accepts every option


class ScaledMean(Interaction):
    """A user kernel: scale · (mean over j ≠ i of x_j − x_i)."""

    def __init__(self, dim: int, scale: float = 1.0):
        super().__init__(dim)
        self.scale = torch.nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x, t=None):
        x = self.check(x)
        n = x.shape[-2]
        if n == 1:
            return torch.zeros_like(x)
        return self.scale * (x.sum(-2, keepdim=True) - x) / (n - 1) - self.scale * x


def test_user_registered_kernel_builds_from_config(registry_cleanup, tmp_path):
    INTERACTIONS.register("test_scaled_mean", ScaledMean)
    cfg = preset("scimf", dim=3).override(
        **{"model.inter": {"name": "test_scaled_mean", "scale": 2.0}, "model.intra.width": 8}
    )
    assert Config.load(cfg.save(tmp_path / "user.toml")) == cfg
    model = build_model(cfg)
    assert isinstance(model.drift.inter, ScaledMean) and model.drift.inter.scale.item() == 2.0
    x = torch.randn(4, 3)
    torch.testing.assert_close(model.drift.parts(x)["inter"], 2.0 * ((x.sum(0) - x) / 3 - x))
    assert model(x, [0.0, 0.2], seed=0).xs.shape == (2, 4, 3)
    with pytest.raises(
        TypeError,
        match=r"interaction 'test_scaled_mean' got unknown option\(s\) \['scal'\]; accepted: \['dim', 'scale'\]",
    ):
        cfg.override(**{"model.inter.scal": 1.0})
    with pytest.raises(KeyError, match="already registered"):
        INTERACTIONS.register("test_scaled_mean", Interaction)


def test_registry_cleanup_fixture_removed_user_kernel():
    assert "test_scaled_mean" not in INTERACTIONS


@pytest.mark.parametrize("dim, heads", [(1, 1), (3, 1), (2, 2), (50, 2)])
def test_attention_presets_pick_heads_that_divide_dim(dim, heads):
    for name in ("scimf", "symmetric_qk"):
        cfg = mfsde.preset(name, dim=dim)
        assert cfg.model.inter.options["heads"] == heads
        model = mfsde.model.build_model(cfg)
        assert model.drift.inter.heads == heads
        x = torch.randn(5, dim)
        assert model.drift(x).shape == (5, dim)
