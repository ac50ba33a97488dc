"""Class-conditional GANs: the class prior of G's latent, the projection discriminator's
formula, AC-GAN's costs, the per-class metrics, and conditional runs end to end (digits
and an image folder with class sub-folders), with resume bit-exact."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import gankit
from gankit.build import build_models, resolve_classes
from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics.conditional import class_accuracy, intra_class_fd
from gankit.nets.dcgan import DCGANDiscriminator
from gankit.nets.heads import AuxiliaryClassifierCritic, ConditionalGenerator, ProjectionCritic
from gankit.nets.layers import features
from gankit.nets.mlp import MLPDiscriminator, sample_latent
from gankit.training.costs import Batch

DIGITS = ['data.name="digits"', 'model.generator="dcgan"', 'model.discriminator="dcgan"',
          "model.z_dim=16", "model.g_width=16", "model.d_width=16", "train.batch_size=32",
          "train.log_every=5", "train.checkpoint_every=10", "train.device='cpu'"]


class Concat(nn.Module):
    """A 'network' that returns its input: decode's input is visible."""

    def forward(self, u):
        return u


def test_the_class_coordinate_draws_classes_with_the_prior_and_decode_appends_one_hot():
    g = ConditionalGenerator(Concat(), noise_dim=3, num_classes=4)
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    g.class_prior.copy_(prior)
    u = torch.randn(200_000, 4, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(g.labels(u), minlength=4).double() / len(u)
    assert torch.allclose(freq, prior.double(), atol=4e-3)  # binomial SE ≈ 1e-3
    out = g(u[:5])
    assert torch.equal(out[:, :3], u[:5, :3])
    assert torch.equal(out[:, 3:].argmax(1), g.labels(u[:5]))
    assert torch.equal(out[:, 3:].sum(1), torch.ones(5))


@pytest.mark.parametrize("net, x", [
    (MLPDiscriminator(5, width=7), torch.randn(6, 5)),
    (DCGANDiscriminator(8, 1, width=4), torch.randn(6, 1, 8, 8)),
    (nn.Sequential(nn.Flatten(), nn.Linear(20, 9), nn.ReLU(), nn.Linear(9, 1)),
     torch.randn(6, 4, 5))])
def test_projection_is_psi_of_phi_plus_the_class_embedding_inner_product(net, x):
    d = ProjectionCritic(net, features(net, x).shape[-1], num_classes=3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    phi = features(net, x)
    # without a class it is the network itself: ψ(φ(x)) = D(x)
    torch.testing.assert_close(d(x), net(x).reshape(-1))
    expected = net(x).reshape(-1) + (d.embed.weight[y] * phi).sum(-1)
    torch.testing.assert_close(d(x, y), expected)
    # the gradient reaches exactly the embedding rows of the classes present
    d(x, torch.tensor([1] * 6)).sum().backward()
    rows = d.embed.weight.grad.abs().sum(1)
    assert rows[1] > 0 and rows[0] == 0 and rows[2] == 0


def acgan_cfg(weight=0.7):
    cfg = gankit.load_config(None, [*DIGITS, 'conditional.method="acgan"',
                                    f"conditional.ac_weight={weight}"])
    return resolve_classes(cfg, gankit.build_target(cfg))


def test_acgan_costs_add_the_class_cross_entropy_with_the_papers_weights():
    cfg = acgan_cfg(0.7)
    g, d = build_models(cfg, (1, 8, 8))
    assert isinstance(d, AuxiliaryClassifierCritic) and cfg.conditional.classes == 10
    objective = gankit.build_objective(cfg)
    real, fake = torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)
    y_real, y_fake = torch.arange(8) % 10, (torch.arange(8) + 3) % 10
    b = Batch(real, None, fake=fake, classes=(y_real, y_fake))
    d_cost = gankit.discriminator_cost(cfg, objective)
    g_cost = gankit.generator_cost(cfg, objective)
    assert d_cost.names == ["objective", "classes"] and g_cost.names == ["objective", "classes"]
    ce_real = F.cross_entropy(d.classify(real), y_real)
    ce_fake = F.cross_entropy(d.classify(fake), y_fake)
    # D: ½ of the paper's L_C over both batches; G: ½ of its fake term (as ½ V)
    expected_d = objective.discriminator(d(real), d(fake)) + 0.7 * (ce_real + ce_fake) / 2
    expected_g = objective.generator(d(fake)) + 0.5 * 0.7 * ce_fake
    torch.testing.assert_close(d_cost(d, b, {}), expected_d)
    torch.testing.assert_close(g_cost(d, b, {}), expected_g)


def test_every_call_of_a_projection_d_gets_the_classes_of_its_batch():
    """R1 penalises ∇ₓ D(x, y_real): for D linear in x the penalty is ‖w + E[y]‖², which
    differs between classes, so the classes must be the ones passed."""
    cfg = gankit.load_config(None, [*DIGITS, 'conditional.method="projection"',
                                    "conditional.classes=2", "objective.r1=2"])
    w = torch.tensor([0.5, -1.0])
    net = nn.Sequential(nn.Identity(), nn.Linear(2, 1, bias=False))
    net[1].weight.data = w[None]
    d = ProjectionCritic(net, 2, 2)
    d.embed.weight.data = torch.tensor([[0.0, 0.0], [3.0, 1.0]])
    cost = gankit.discriminator_cost(cfg, gankit.build_objective(cfg))
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    for y, grad in ((0, w), (1, w + torch.tensor([3.0, 1.0]))):
        b = Batch(real, None, fake=fake, classes=(torch.full((4,), y), torch.zeros(4).long()))
        plain = gankit.build_objective(cfg).discriminator(d(real, b.classes[0]),
                                                          d(fake, b.classes[1]))
        assert cost(d, b, {}).item() == pytest.approx(plain.item() + float(grad @ grad),
                                                      rel=1e-5)


def test_class_accuracy_and_intra_class_fd_see_swapped_classes_the_mixture_does_not():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 2
    real = torch.randn(400, 3, generator=g) + 4 * labels[:, None]
    fake = torch.randn(400, 3, generator=g) + 4 * labels[:, None]
    swapped = 1 - labels  # G draws class 1 when asked for 0: the same mixture
    assert class_accuracy(labels, labels) == 1.0 and class_accuracy(swapped, labels) == 0.0
    right = intra_class_fd(fake, labels, real, labels)
    wrong = intra_class_fd(fake, swapped, real, labels)
    assert right < 0.2 and wrong > 40  # ‖μ₀ − μ₁‖² = 3 · 16 = 48
    assert intra_class_fd(real, labels, real, labels) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad, words", [
    (['data.name="ring8"'], "data.name: not available with conditional"),  # no labels
    (["tricks.pack=2"], "tricks.pack"),
    (["train.seeds=2"], "train.seeds"),
    (["tricks.feature_matching=true"], "tricks.feature_matching"),
    (['objective.name="gmmn"'], "objective.name"),
    (["conditional.classes=7"], "conditional.classes: 7 given, the data has 10"),
])
def test_combinations_a_conditional_run_refuses_are_one_line_with_exit_2(tmp_path, capsys, bad,
                                                                         words):
    (tmp_path / "c.toml").write_text("")
    sets = [a for s in [*DIGITS, 'conditional.method="projection"', "train.steps=2", *bad]
            for a in ("--set", s)]
    code = main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r"),
                 "--no-progress", *sets])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and words in err[-1], err


def test_generate_with_a_label_needs_a_conditional_generator():
    cfg = gankit.load_config(None, [])
    g, _ = build_models(cfg, (2,))
    with pytest.raises(GankitError, match="--class: 3 given; allowed: nothing"):
        gankit.generate(cfg, g, 4, 0, label=3)


def test_a_conditional_digits_run_resumes_bit_exact(assert_resume_exact, small_classifiers):
    cfg = gankit.load_config(None, [*DIGITS, 'conditional.method="projection"',
                                    "train.steps=20", "objective.r1=1"])
    assert_resume_exact(cfg, 10)


def test_a_conditional_run_end_to_end_sample_a_class_and_its_metrics(tmp_path, capsys,
                                                                      small_classifiers):
    (tmp_path / "c.toml").write_text("")
    sets = [a for s in [*DIGITS, 'conditional.method="acgan"', "train.steps=30"]
            for a in ("--set", s)]
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "c.toml"), "--out", str(run), "--no-progress",
                 *sets]) == 0
    m = json.loads((run / "summary.json").read_text())["metrics"]
    assert 0 <= m["class_accuracy"] <= 1 and m["intra_fd"] > m["intra_fd_floor"] > 0
    assert (run / "classes.png").exists()
    saved = gankit.load_config(run / "config.toml")
    assert saved.conditional.classes == 10  # written resolved
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "7", "--class", "3", "--out",
                 str(tmp_path / "threes.npy")]) == 0
    threes = np.load(tmp_path / "threes.npy")
    assert threes.shape == (7, 1, 8, 8)
    # the same latent noise with its class replaced: what G.decode(z, 3) gives
    cfg, g, _, _ = gankit.load_run(run)
    z = sample_latent(7, g.z_dim, "normal", torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = g.eval().decode(z[:, :-1], torch.full((7,), 3))
    np.testing.assert_allclose(threes, expected.numpy(), atol=1e-6)
    assert main(["sample", str(run), "--class", "10", "--out", str(tmp_path / "x.npy")]) == 2
    assert "--class: 10 given; allowed: 0 to 9" in capsys.readouterr().err
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert 'alt="classes.png"' in (tmp_path / "r.html").read_text()
    # D's density ratio is per class: no --correct yet
    assert main(["eval", str(run), "--correct", "drs"]) == 2
    assert "--correct: not for a conditional run" in capsys.readouterr().err


def test_an_image_folder_with_class_folders_trains_conditionally(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for k, colour in enumerate(([200, 40, 40], [40, 40, 200], [40, 200, 40])):
        (tmp_path / "pngs" / f"c{k}").mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(colour + rng.normal(0, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pngs" / f"c{k}" / f"{i}.png")
    (tmp_path / "c.toml").write_text(
        f'[data]\nname = "images"\npath = "{tmp_path / "pngs"}"\n'
        '[model]\ngenerator = "dcgan"\ndiscriminator = "dcgan"\nz_dim = 8\n'
        '[conditional]\nmethod = "projection"\n')
    code = main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "train.steps=20", "--set", "train.batch_size=16",
                 "--set", "model.g_width=8", "--set", "model.d_width=8"])
    assert code == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert m["features"].startswith("classifier of your 3 classes")
    assert math.isfinite(m["intra_fd"]) and 0 <= m["class_accuracy"] <= 1
    # a folder without class folders has no labels: refused in one line
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(flat / f"{i}.png")
    (tmp_path / "f.toml").write_text(
        f'[data]\nname = "images"\npath = "{flat}"\n'
        '[model]\ngenerator = "dcgan"\ndiscriminator = "dcgan"\n'
        '[conditional]\nmethod = "acgan"\n')
    capsys.readouterr()
    assert main(["train", str(tmp_path / "f.toml"), "--out", str(tmp_path / "run2"),
                 "--no-progress"]) == 2
    assert "needs class labels" in capsys.readouterr().err


def test_the_python_example_of_docs_conditional_runs_verbatim(monkeypatch):
    import re
    from pathlib import Path

    root = Path(__file__).parent.parent
    (code,) = re.findall(r"```python\n(.*?)```", (root / "docs" / "conditional.md").read_text(),
                         flags=re.S)
    monkeypatch.chdir(root)  # (it reads configs/digits-conditional.toml)
    namespace: dict = {}
    exec(compile(code, "docs/conditional.md", "exec"), namespace)
    assert namespace["x"].shape == (16, 1, 8, 8) and namespace["cfg"].conditional.classes == 10
