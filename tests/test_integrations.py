"""Integrations: Lightning, Transformers' Trainer, Hydra/OmegaConf; each on a tiny model, and its example."""

from __future__ import annotations

import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lossforge as lf

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / name), run_name="lossforge_example")


def test_import_lossforge_imports_no_integration_or_framework():
    code = ("import sys, lossforge, lossforge.cli, lossforge.integrations; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'lightning', 'pytorch_lightning', 'transformers', 'omegaconf', 'hydra'} "
            "or m.startswith('lossforge.integrations.')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# ---- Hydra / OmegaConf --------------------------------------------------------------------------

def test_build_loss_from_plain_configs_without_omegaconf():
    from lossforge.integrations.hydra import build_loss

    assert isinstance(build_loss("huber(delta=2.0)"), lf.HuberLoss)
    criterion = build_loss({"terms": [{"loss": "l1"}, {"loss": "mse", "coef": 0.5}]})
    assert criterion.coefficients == {"l1": 1.0, "mse": 0.5}
    with pytest.raises(ValueError, match=r"needs a 'loss', 'spec' or 'terms' key, got keys \['gamma'\]"):
        build_loss({"gamma": 2.0})
    with pytest.raises(ValueError, match="Did you mean 'focal'"):
        build_loss({"loss": "focall"})
    with pytest.raises(TypeError, match="not both"):
        build_loss("l1", loss="mse")


def test_omegaconf_configs_become_losses():
    omegaconf = pytest.importorskip("omegaconf")
    from lossforge.integrations.hydra import build_loss, to_spec

    cfg = omegaconf.OmegaConf.create({
        "w": 0.25,
        "as_string": "dice + ${w}*focal(gamma=2.0)",
        "as_list": [{"loss": "dice"}, {"loss": "focal", "gamma": 2.0, "coef": "${w}"}],
        "as_dict": {"loss": "cross_entropy", "class_weight": [1.0, 2.0, 1.0]},
    })
    assert to_spec(cfg.as_list) == [{"loss": "dice"}, {"loss": "focal", "gamma": 2.0, "coef": 0.25}]
    a, b = build_loss(cfg.as_string), build_loss(cfg.as_list)
    assert a.coefficients == b.coefficients == {"dice": 1.0, "focal": 0.25}
    logits, target = torch.randn(2, 3, 4, 4), torch.randint(3, (2, 4, 4))
    assert torch.equal(a(logits, target), b(logits, target))
    weighted = build_loss(cfg.as_dict)
    expected = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0, 1.0]))
    assert torch.allclose(weighted(logits, target), expected)


def test_hydra_instantiate_builds_the_loss():
    pytest.importorskip("hydra")
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    target = "lossforge.integrations.hydra.build_loss"
    by_spec = instantiate(OmegaConf.create({"_target_": target, "spec": "l1 + 0.5*mse"}))
    by_fields = instantiate(OmegaConf.create({"_target_": target, "loss": "huber", "delta": 0.5}))
    by_terms = instantiate(OmegaConf.create({"_target_": target, "terms": [{"loss": "l1"}, {"loss": "mse"}]}))
    assert by_spec.coefficients == {"l1": 1.0, "mse": 0.5}
    assert isinstance(by_fields, lf.HuberLoss) and by_fields.delta == 0.5
    assert by_terms.coefficients == {"l1": 1.0, "mse": 1.0}


def test_hydra_example():
    pytest.importorskip("hydra")
    values = _example("hydra_config.py")["main"]()
    assert len(set(values.values())) == 1 and set(values) == {"string", "list", "instantiate"}


# ---- Lightning ----------------------------------------------------------------------------------

def _lightning_trainer(L, epochs: int):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)


@pytest.fixture
def quiet_lightning():
    L = pytest.importorskip("lightning")
    import logging

    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
        yield L
    logger.setLevel(level)


def test_lightning_module_logs_every_term(quiet_lightning):
    L = quiet_lightning
    from torch.utils.data import DataLoader, TensorDataset

    from lossforge.integrations.lightning import LossforgeModule, log_terms

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    module = LossforgeModule(nn.Linear(4, 2), "cross_entropy + 0.5*focal(gamma=2)", lr=0.05)
    trainer = _lightning_trainer(L, 2)
    trainer.fit(module, loader, loader)
    logged = trainer.callback_metrics
    for stage in ("train", "val"):
        for term in ("cross_entropy", "focal", "total"):
            assert f"{stage}/{term}" in logged, (stage, term, sorted(logged))
    total = float(logged["val/total"])
    assert total == pytest.approx(float(logged["val/cross_entropy"]) + 0.5 * float(logged["val/focal"]), rel=1e-5)
    assert callable(log_terms)
    trainer.test(module, loader, verbose=False)
    assert "test/focal" in trainer.callback_metrics


def test_lightning_module_trains_the_loss_parameters_and_transforms_targets(quiet_lightning):
    L = quiet_lightning
    from torch.utils.data import DataLoader, TensorDataset

    from lossforge.integrations.lightning import LossforgeModule

    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(3, (32,))
    arc = LossforgeModule(nn.Linear(6, 8), {"loss": "arcface", "num_classes": 3, "embedding_dim": 8}, lr=0.1)
    before = [p.clone() for p in arc.criterion.parameters()]
    _lightning_trainer(L, 1).fit(arc, DataLoader(TensorDataset(x, y), batch_size=8))
    assert before and all(not torch.equal(a, b) for a, b in zip(before, arc.criterion.parameters()))

    onehot = LossforgeModule(nn.Linear(6, 3), "binary_cross_entropy_with_logits",
                             target_transform=lambda t: F.one_hot(t, 3).float())
    _lightning_trainer(L, 1).fit(onehot, DataLoader(TensorDataset(x, y), batch_size=8))
    with pytest.raises(ValueError, match="lr must be positive"):
        LossforgeModule(nn.Linear(2, 2), "mse", lr=0.0)


def test_lightning_module_class_pickles_by_name(quiet_lightning):
    import pickle

    from lossforge.integrations import lightning as integ

    module = integ.LossforgeModule(nn.Linear(2, 2), "cross_entropy")
    assert type(module).__qualname__ == "LossforgeModule"
    assert isinstance(pickle.loads(pickle.dumps(module)), integ.LossforgeModule)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        integ.NoSuchThing  # noqa: B018


def test_lightning_example(quiet_lightning):
    metrics = _example("lightning_composite.py")["main"](epochs=2)
    assert {"train/cross_entropy", "train/focal", "train/total", "val/total"} <= set(metrics)
    assert metrics["val/total"] < 1.0


# ---- Transformers -------------------------------------------------------------------------------

def test_compute_loss_func_token_logits_padding_and_shift():
    from lossforge.integrations.transformers import LossforgeLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4)
    labels = torch.randint(4, (2, 5))
    labels[1, 3:] = -100
    loss_fn = LossforgeLoss("cross_entropy")
    expected = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), ignore_index=-100)
    assert torch.allclose(loss_fn({"logits": logits}, labels), expected)
    shifted = LossforgeLoss("cross_entropy", shift_labels=True)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 4), labels[:, 1:].reshape(-1))
    assert torch.allclose(shifted({"logits": logits}, labels), expected)
    by_index = LossforgeLoss("cross_entropy", logits_key=0)
    assert torch.allclose(by_index((logits,), labels), loss_fn({"logits": logits}, labels))
    with pytest.raises(KeyError, match="logits_key 'scores' is not in the model's outputs"):
        LossforgeLoss("cross_entropy", logits_key="scores")({"logits": logits}, labels)


def test_compute_loss_func_scales_micro_batches_by_their_share_of_items():
    from lossforge.integrations.transformers import LossforgeLoss

    torch.manual_seed(0)
    logits = torch.randn(6, 3, requires_grad=True)
    labels = torch.tensor([0, 1, 2, -100, 1, 0])
    loss_fn = LossforgeLoss("cross_entropy")
    parts = loss_fn({"logits": logits[:3]}, labels[:3], num_items_in_batch=5) + \
        loss_fn({"logits": logits[3:]}, labels[3:], num_items_in_batch=5)
    whole = F.cross_entropy(logits, labels, ignore_index=-100)
    assert torch.allclose(parts, whole)  # accumulated micro-batches = the whole batch's mean


def test_compute_loss_func_regression_and_term_means():
    from lossforge.integrations.transformers import LossforgeLoss

    loss_fn = LossforgeLoss("huber + 0.5*l1")
    pred, target = torch.tensor([[0.5], [3.0]]), torch.tensor([0.0, 0.0])
    value = loss_fn({"logits": pred}, target)
    assert float(value) == pytest.approx((0.125 + 2.5) / 2 + 0.5 * 1.75)
    with torch.no_grad():  # evaluation: not counted
        loss_fn({"logits": pred}, target)
    means = loss_fn.term_means()
    assert means["huber"] == pytest.approx(1.3125) and means["l1"] == pytest.approx(1.75)
    assert loss_fn.term_means() == {}
    with pytest.raises(ValueError, match="labels must be given"):
        loss_fn({"logits": pred}, None)


def test_transformers_trainer_example_logs_every_term(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    logs = _example("transformers_trainer.py")["main"](epochs=2, out=str(tmp_path))
    assert logs and all({"loss/cross_entropy", "loss/focal", "loss/total"} <= set(e) for e in logs)
    for e in logs:  # the Trainer's loss is the lossforge total: micro-batches rescaled correctly
        assert e["loss"] == pytest.approx(e["loss/total"], rel=1e-3)
        assert e["loss/total"] == pytest.approx(e["loss/cross_entropy"] + 0.5 * e["loss/focal"], rel=1e-4)
    assert logs[-1]["loss"] < logs[0]["loss"]
