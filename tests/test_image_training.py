"""Training and evaluating convolutional GANs on image data through the usual loop."""

import json

import pytest
import torch

from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.nets.layers import pack
from gankit.runs import train

TINY_IMAGES = ["model.g_width=8", "model.d_width=8", "model.z_dim=8", "train.steps=4",
               "train.batch_size=8", "train.log_every=2", "train.checkpoint_every=2",
               "train.device='cpu'"]


@pytest.mark.parametrize("config", ["digits-dcgan", "stacked-mnist-pacgan", "digits-gmmn",
                                    "digits-mmd-gan"])
def test_dcgan_configs_train_and_evaluate(tmp_path, small_classifiers, config, capsys):
    cfg = load_config(f"configs/{config}.toml", TINY_IMAGES + ["train.snapshot_every=2"])
    summary = train(cfg, tmp_path / "run", progress=False)
    for picture in ("samples.png", "fixed_z.png", "neighbours.png"):
        assert (tmp_path / "run" / picture).stat().st_size > 0
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("step 2") >= 1  # the fixed-z slider
    capsys.readouterr()
    m = summary["metrics"]
    for key in ("fd", "kid", "precision", "recall", "modes", "kl", "classifier_accuracy"):
        assert key in m
    assert m["num_modes"] == (1000 if config.startswith("stacked") else 10)
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["metrics"]["fd"] == pytest.approx(m["fd"])
    assert r["floor"]["modes"] > 0 and r["floor"]["fd"] < r["metrics"]["fd"]
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert "real floor" in capsys.readouterr().out


def test_packing_images_stacks_channels():
    x = torch.arange(4 * 3 * 2 * 2.0).reshape(4, 3, 2, 2)
    packed = pack(x, 2)
    assert packed.shape == (2, 6, 2, 2)
    assert torch.equal(packed[1, 3:], x[3])  # the second pack's second sample


def test_mlp_networks_on_flattened_images(tmp_path, small_classifiers):
    """MLPs read and write images flattened; unlike DCGAN (batch norm) they train several
    seeds together, with the tricks the DCGAN networks lack."""
    mlp = ["model.generator='mlp'", "model.discriminator='mlp'", "train.seeds=2",
           "tricks.pack=2", "tricks.minibatch_discrimination=3",
           "tricks.virtual_batch_norm=true", "tricks.vbn_reference_size=4"]
    cfg = load_config("configs/digits-dcgan.toml", TINY_IMAGES + mlp)
    summary = train(cfg, tmp_path / "run", progress=False)
    assert [p["seed"] for p in summary["per_seed"]] == [0, 1]
    from gankit.runs import load_run

    _, g, d, _ = load_run(tmp_path / "run")
    x = g(torch.randn(2, 6, 8))
    assert x.shape == (2, 6, 1, 8, 8)  # (seeds, n, C, H, W)
    assert d(x).shape == (2, 3)  # packs of 2
    single = load_config("configs/digits-dcgan.toml", TINY_IMAGES + mlp[:2])
    assert train(single, tmp_path / "single", progress=False)["metrics"]["modes"] >= 0


def test_image_configs_refuse_what_does_not_fit(tmp_path):
    with pytest.raises(GankitError, match="model.generator: 'dcgan' does not fit"):
        load_config("configs/ring8-nonsaturating.toml", ["model.generator='dcgan'"])
    for extra, field in ((["train.seeds=2"], "train.seeds"),
                         (["tricks.virtual_batch_norm=true"], "tricks.virtual_batch_norm")):
        with pytest.raises(GankitError, match=field):
            load_config("configs/digits-dcgan.toml", extra)
    with pytest.raises(GankitError, match="data.root"):
        load_config("configs/mnist5k-dcgan.toml", ["data.name='mnist'"])
    for extra, field in ((["model.d_hidden=64"], "model.d_hidden: 64 is for the dcgan"),
                         (["model.d_norm='batch'"], "model.d_norm: 'batch' is for the dcgan"),
                         (["model.g_hidden=64"], "model.g_hidden: 64 is for the dcgan")):
        with pytest.raises(GankitError, match=field):
            load_config("configs/ring8-nonsaturating.toml", extra)
    with pytest.raises(GankitError, match="model.d_norm: 'batch' makes D's output depend"):
        load_config("configs/digits-dcgan.toml", ["model.d_norm='batch'",
                                                  "objective.name='wasserstein_gp'"])
