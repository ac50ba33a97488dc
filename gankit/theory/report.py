"""``gankit theory``: the identities of the GAN theory shown on known densities.

Each row is a pair (what a critic trained on samples says, what the exact densities say),
so a reader can check the theory on their own machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit import theory as th
from gankit.data.mixtures import GaussianMixture, mixture
from gankit.losses.objectives import discriminator_loss, max_likelihood, minimax, nonsaturating
from gankit.plots import plot_limits, plt, save_figure

__all__ = ["LOG4", "one_d_pair", "ring8_pair", "collapsed_pair", "optimal_d_section",
           "fgan_section", "ml_gradient_section", "best_response_section", "run_theory",
           "plot_theory", "format_theory"]


LOG4 = 2 * math.log(2)


def one_d_pair() -> tuple[GaussianMixture, GaussianMixture]:
    """p: a two-Gaussian mixture; q: one broad Gaussian standing for a fixed generator."""
    return GaussianMixture([-1.0, 2.0], [0.5, 0.8], [0.4, 0.6]), GaussianMixture([0.5], [1.5])


def ring8_pair() -> tuple[GaussianMixture, GaussianMixture]:
    """p: ring8; q: a partly collapsed generator (same means, wider, uneven weights)."""
    p = mixture("ring8")
    return p, GaussianMixture(p.means, 0.05, [0.3, 0.3, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])


def collapsed_pair(p: GaussianMixture) -> tuple[GaussianMixture, GaussianMixture]:
    """p: any mixture (yours: ``data.name = "mixture"``); q: a partly collapsed generator
    as for ring8: the same means, 5× wider, the first quarter of the modes holding 60% of
    the mass and the rest shared evenly."""
    k = p.num_modes
    heavy = max(1, k // 4)
    weights = [0.6 / heavy] * heavy + [0.4 / max(1, k - heavy)] * (k - heavy) if k > 1 \
        else [1.0]
    return p, GaussianMixture(p.means, p.stds * 5, weights)


def optimal_d_section(p, q, steps: int, n: int, seed: int) -> tuple[dict, torch.nn.Module]:
    """Train D on samples against fixed q; compare with D* and max_D V with JSD."""
    d = th.train_critic(discriminator_loss, p, q, steps=steps, seed=seed,
                        critic=th.small_critic(p.dim, 128, 3))
    rng = torch.Generator().manual_seed(seed + 7)
    xp, xq = p.sample(n, rng).float(), q.sample(n, rng).float()
    with torch.no_grad():
        lp, lq = d(xp).double(), d(xq).double()
    # V(D, G) = E_p log D + E_q log(1 − D), with its standard error
    v_hat = th.mean_and_stderr(-F.softplus(-lp), -F.softplus(lq))
    jsd = th.divergence("jsd", p, q)
    # |D − D*| where the data lives: on samples from both p and q.
    x = torch.cat([xp[:5000], xq[:5000]])
    with torch.no_grad():
        gap = (torch.sigmoid(d(x).double()) - th.optimal_discriminator(p, q)(x)).abs()
    out = {
        "max_d_value": {"estimate": v_hat[0], "stderr": v_hat[1],
                        "exact": -LOG4 + 2 * jsd.value, "exact_stderr": 2 * jsd.stderr,
                        "identity": "max_D V(D, G) = -2 log 2 + 2 JSD(p||q)"},
        "d_vs_optimal": {"mean_abs_error": float(gap.mean()), "p90_abs_error":
                         float(gap.quantile(0.9))},
        "from_discriminator": {},
    }
    if p.dim == 1:
        out["max_d_value"]["value_at_optimal_d"] = th.value_at_optimum(p, q)
    for name, est in th.divergences_from_discriminator(d, xp, xq).items():
        exact = th.divergence(name, p, q)
        out["from_discriminator"][name] = {"estimate": est.value, "stderr": est.stderr,
                                           "exact": exact.value, "exact_stderr": exact.stderr}
    return out, d


def fgan_section(p, q, steps: int, n: int, seed: int) -> dict:
    rows = {}
    for name in th.DIVERGENCES:
        est = th.estimate_divergence(name, p, q, steps=steps, n_eval=n, seed=seed)
        exact = th.divergence(name, p, q)
        rows[name] = {"estimate": est.value, "stderr": est.stderr, "exact": exact.value,
                      "exact_stderr": exact.stderr, "hilbertian": name in th.HILBERTIAN}
    return rows


def ml_gradient_section(p, n: int, seed: int, scale: float = 1.5) -> list[dict]:
    """Location family q_θ = N(θ, s²), G(z) = θ + s z. With D = D* for q_θ held fixed, the
    expected gradient of the maximum-likelihood cost is ½ dKL(p‖q_θ)/dθ (Goodfellow 2014b);
    the minimax and non-saturating costs' gradients are shown beside it for contrast."""
    mean_p = float((p.weights * p.means[:, 0]).sum())
    rows = []
    for theta in (-1.0, 0.0, 0.5, 1.5, 3.0):
        q = GaussianMixture([theta], [scale])
        logit = th.optimal_logit(p, q)
        z = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        row = {"theta": theta, "half_kl_gradient": 0.5 * (theta - mean_p) / scale**2}
        for cname, cost in (("max_likelihood", max_likelihood), ("minimax", minimax),
                            ("nonsaturating", nonsaturating)):
            # one copy of θ per sample gives per-sample gradients, hence a standard error
            t = torch.full((n,), theta, dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(n * cost(logit(t[:, None] + scale * z)), t)
            row[f"{cname}_gradient"] = float(g.mean())
            row[f"{cname}_stderr"] = float(g.std() / math.sqrt(n))
        rows.append(row)
    return rows


def gaussian_pair() -> tuple[GaussianMixture, GaussianMixture]:
    """p = N(1, 0.5²), q = N(0, 1): D* has one maximum, at x* = 4/3 in closed form."""
    return GaussianMixture([1.0], [0.5]), GaussianMixture([0.0], [1.0])


def best_response_section(steps: int, n: int, seed: int, eps: float = 0.05) -> dict:
    """min_G V for a fixed D = D*(p, q): G trained against the frozen D, on a pair whose D*
    has one maximum (closed form) and on the two-mode 1-D pair (argmax on a grid)."""
    rows = {}
    described = {"gaussian": ("N(1, 0.5^2)", "N(0, 1)"),
                 "mixture": ("0.4 N(-1, 0.5^2) + 0.6 N(2, 0.8^2)", "N(0.5, 1.5^2)")}
    for key, (p, q) in (("gaussian", gaussian_pair()), ("mixture", one_d_pair())):
        logit = th.optimal_logit(p, q)
        x_star = float(th.argmax_on_grid(logit, -8.0, 8.0, 1, 160_001, torch.float64)[0])
        g = th.best_response(logit, 1, steps=steps, seed=seed)
        with torch.no_grad():
            x = g(torch.randn(n, 1, generator=torch.Generator().manual_seed(seed + 3)))
        mean = float(x.mean())
        row = {"p": described[key][0], "q": described[key][1], "eps": eps,
               "argmax_d": x_star, "g_mean": mean, "g_std": float(x.std()),
               "fraction_near_argmax": th.fraction_near(x.double(), torch.tensor([x_star]), eps),
               "d_at_argmax": float(torch.sigmoid(logit(torch.tensor([[x_star]],
                                                                       dtype=torch.float64)))),
               "d_at_g_mean": float(torch.sigmoid(logit(torch.tensor([[mean]],
                                                                      dtype=torch.float64)))),
               "samples": x[:2000, 0].tolist()}
        if key == "gaussian":
            row["closed_form"] = th.gaussian_golden_point(1.0, 0.5, 0.0, 1.0)
        rows[key] = row
    return rows


def run_theory(out: Path | None = None, quick: bool = False, seed: int = 0,
               mixture_pair: tuple | None = None) -> dict:
    """The identities on the 1-D pair and on ring8 against a partly collapsed q, or on
    ``mixture_pair = (name, p)`` (any mixture) against ``collapsed_pair(p)``."""
    steps, n = (800, 20_000) if quick else (3000, 100_000)
    p1, q1 = one_d_pair()
    if mixture_pair is None:
        p2, q2 = ring8_pair()
        described = {"p": "ring8", "q": "ring8 means, sigma 0.05, weights "
                                        "[.3,.3,.1,.1,.05,.05,.05,.05]"}
    else:
        p2, q2 = collapsed_pair(mixture_pair[1])
        described = {"p": mixture_pair[0], "q": "its means, 5x its sigma, 60% of the mass on "
                                                "the first quarter of the modes"}
    result: dict = {"one_d": {"p": "0.4 N(-1, 0.5^2) + 0.6 N(2, 0.8^2)", "q": "N(0.5, 1.5^2)"},
                    "ring8": described}
    sec, d1 = optimal_d_section(p1, q1, steps, n, seed)
    result["one_d"].update(sec)
    result["one_d"]["f_gan"] = fgan_section(p1, q1, steps, n, seed)
    result["one_d"]["conjugate_identity"] = {
        name: {"D_f(P||Q)": th.divergence(name, p1, q1).value,
               "D_f°(Q||P)": th.divergence(th.conjugate(th.f_function(name)), q1, p1).value}
        for name in th.DIVERGENCES}
    sec, d2 = optimal_d_section(p2, q2, 2 * steps, n, seed)
    result["ring8"].update(sec)
    result["ml_gradient"] = ml_gradient_section(p1, n, seed)
    result["best_response"] = best_response_section(steps, n, seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        plot_theory((p1, q1, d1), (p2, q2, d2), out / "theory.png", result["best_response"])
    for row in result["best_response"].values():  # (drawn; not part of the table)
        del row["samples"]
    return result


def plot_theory(one_d: tuple, ring: tuple, path: Path, best: dict | None = None) -> None:
    """D against D* on the 1-D pair and on ring8: each (p, q, trained D); below, G's best
    response to a frozen D* (``best_response_section``'s rows with their samples)."""
    (p1, q1, d1), (p2, q2, d2) = one_d, ring

    fig, grid_axes = plt.subplots(2 if best else 1, 3, figsize=(15, 8.8 if best else 4.4),
                                  squeeze=False)
    axes = grid_axes[0]
    if best:
        plot_best_response(grid_axes[1], best)
    x = torch.linspace(-4.5, 6, 600, dtype=torch.float64)[:, None]
    with torch.no_grad():
        learned = torch.sigmoid(d1(x.float()).double()).numpy()
    ax, xs = axes[0], x[:, 0].numpy()
    ax.plot(xs, p1.log_prob(x).exp().numpy(), c="green", label="p (data)")
    ax.plot(xs, q1.log_prob(x).exp().numpy(), c="gray", label="q (fixed G)")
    ax.plot(xs, th.optimal_discriminator(p1, q1)(x).numpy(), c="black", lw=2,
            label="D* = p/(p+q)")
    ax.plot(xs, learned, c="red", ls="--", label="learned D")
    ax.set_title("1-D: learned D against D*", fontsize=9), ax.legend(fontsize=7)
    if p2.dim != 2:  # (a mixture in other dimensions: no map to draw)
        for ax in axes[1:]:
            ax.set_axis_off()
        save_figure(fig, path)
        return
    lo, hi = plot_limits(p2)
    ticks = torch.linspace(lo, hi, 260, dtype=torch.float64)
    xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
    grid = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        maps = [th.optimal_discriminator(p2, q2)(grid), torch.sigmoid(d2(grid.float()).double())]
    for ax, m, title in zip(axes[1:], maps, ["mixture: D*", "mixture: learned D"]):
        im = ax.imshow(m.reshape(260, 260).numpy(), origin="lower", extent=(lo, hi, lo, hi),
                       cmap="RdBu_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.04, label="D(x)")
    save_figure(fig, path)


def plot_best_response(axes, best: dict) -> None:
    """D* (fixed) with the samples of G trained against it, and D's argmax."""
    for ax, (key, (p, q)) in zip(axes, (("gaussian", gaussian_pair()), ("mixture", one_d_pair()))):
        row = best[key]
        x = torch.linspace(-4.5, 6, 600, dtype=torch.float64)[:, None]
        xs = x[:, 0].numpy()
        ax.plot(xs, p.log_prob(x).exp().numpy(), c="green", label="p (data)")
        ax.plot(xs, q.log_prob(x).exp().numpy(), c="gray", label="q")
        ax.plot(xs, th.optimal_discriminator(p, q)(x).numpy(), c="black", lw=2,
                label="frozen D = D*(p, q)")
        ax.hist(row["samples"], bins=120, range=(-4.5, 6), density=True, color="red",
                alpha=0.6, label="G trained against D")
        ax.axvline(row["argmax_d"], c="orange", ls="--", label="argmax D")
        ax.set_ylim(0, 1.6)
        ax.set_title(f"min_G V for a fixed D: {row['fraction_near_argmax']:.0%} of G within "
                     f"{row['eps']} of argmax D", fontsize=9)
        ax.legend(fontsize=7)
    axes[2].set_axis_off()


def format_theory(r: dict) -> str:
    def pair(d):
        se = f" ± {d['stderr']:.4f}" if d.get("stderr") else ""
        ex = f" ± {d['exact_stderr']:.4f}" if d.get("exact_stderr") else ""
        return f"{d['estimate']:>9.4f}{se:<10} {d['exact']:>9.4f}{ex}"

    lines = []
    for key, title in (("one_d", "1-D two-Gaussian mixture p vs fixed q"),
                       ("ring8", "mixture p vs partly collapsed q (Monte Carlo exact values)")):
        s = r[key]
        lines += [f"== {title}", f"   p = {s['p']};  q = {s['q']}",
                  f"   {'':34} {'estimate':>9}{'':10} {'exact':>9}",
                  f"   {'max_D V  vs  -2 log 2 + 2 JSD':34} {pair(s['max_d_value'])}"]
        if "value_at_optimal_d" in s["max_d_value"]:
            v_star = s["max_d_value"]["value_at_optimal_d"]
            lines.append(f"   {'V(D*) by quadrature':34} {v_star:>9.4f}")
        for name, d in s["from_discriminator"].items():
            lines.append(f"   {name + ' from D logit':34} {pair(d)}")
        g = s["d_vs_optimal"]
        lines.append(f"   |D - D*| on samples: mean {g['mean_abs_error']:.4f}, "
                     f"90th percentile {g['p90_abs_error']:.4f}")
        if "f_gan" in s:
            lines.append("   f-GAN variational bound (critic on samples) vs exact:")
            for name, d in s["f_gan"].items():
                tag = " (Hilbertian)" if d["hilbertian"] else ""
                lines.append(f"   {name + tag:34} {pair(d)}")
            lines.append("   conjugate identity D_f(P||Q) = D_f°(Q||P):")
            for name, d in s["conjugate_identity"].items():
                a, b = d.values()
                lines.append(f"   {name:34} {a:>9.6f}{'':10} {b:>9.6f}")
    lines.append("== maximum-likelihood cost gradient vs ½ dKL(p||q_theta)/dtheta, "
                 "q_theta = N(theta, 1.5^2), D = D*")
    lines.append(f"   {'theta':>6} {'½ dKL':>9} {'max_lik':>9} {'minimax':>9} {'nonsat':>9}")
    for row in r["ml_gradient"]:
        lines.append(f"   {row['theta']:>6.2f} {row['half_kl_gradient']:>9.4f} "
                     f"{row['max_likelihood_gradient']:>9.4f} {row['minimax_gradient']:>9.4f} "
                     f"{row['nonsaturating_gradient']:>9.4f}")
    if "best_response" in r:
        lines.append("== min_G V for a fixed D = D*(p, q): G (MLP) trained against the frozen D")
        lines.append(f"   {'p  vs  q':56} {'argmax D':>9} {'G mean':>9} {'G std':>8} "
                     f"{'near argmax':>11} {'D(argmax)':>9} {'D(G mean)':>9}")
        for row in r["best_response"].values():
            pq = f"{row['p']}  vs  {row['q']}"
            lines.append(f"   {pq:56} {row['argmax_d']:>9.4f} {row['g_mean']:>9.4f} "
                         f"{row['g_std']:>8.4f} {row['fraction_near_argmax']:>11.1%} "
                         f"{row['d_at_argmax']:>9.4f} {row['d_at_g_mean']:>9.4f}")
            if "closed_form" in row:
                lines.append(f"   {'':56} closed form x* = {row['closed_form']:.4f}")
        lines.append(f"   (near = within {r['best_response']['gaussian']['eps']}; all of G's "
                     "mass moves to one maximum of D: the global one only if G starts in its "
                     "basin)")
    return "\n".join(lines)
