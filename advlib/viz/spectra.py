"""Figures of frequency content and pixel statistics: radially averaged power spectra of images and
of perturbations, pixel-value histograms and per-channel means and spreads (notebook 03).

Sets are name -> images (or ``(images, labels)`` pairs, or :class:`~advlib.viz.datasets.FeatureSet`);
each is drawn in its colour under its paper name (:mod:`advlib.viz.style`).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import style
from .common import _figure, add_note, auto_stamp, message_figure
from .datasets import FeatureSet, _images, perturbations


def _freq_axis(ax) -> None:
    """Log frequency axis with ticks at 1/32, 1/16, ... cycles/pixel (readable, and the CIFAR grid)."""
    ticks = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FixedFormatter(["1/32", "1/16", "1/8", "1/4", "1/2"]))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlabel("frequency (cycles/pixel)")
    ax.axvline(0.5, color="0.6", ls=":", lw=1)  # Nyquist along one axis; beyond it only corners


def _log_y(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


@torch.no_grad()
def radial_power_spectrum(images, *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum, averaged over images and channels.

    Each image channel has its mean subtracted, then ``|FFT2|^2`` (orthonormal, so white noise of
    variance s^2 has power s^2 at every frequency) is averaged over images and channels and then over
    rings of integer radius ``k = round(sqrt(kx^2 + ky^2))``, with kx, ky the integer frequency
    indices of an H x W image (for non-square images, in units of 1/min(H, W)).

    Returns ``freq`` = k / min(H, W) in cycles per pixel, for k = 1 .. max (so 1/32 .. ~0.5·sqrt(2)
    for CIFAR; DC is dropped, it is zero after mean subtraction; beyond 0.5 only the corners of the
    spectrum contribute), and ``power`` = the mean power in each ring.
    """
    x = _images(images)
    N, C, H, W = x.shape
    if N == 0:
        raise ValueError("radial_power_spectrum: no images")
    side = min(H, W)
    fy, fx = torch.fft.fftfreq(H), torch.fft.fftfreq(W)  # cycles/pixel
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    bins = torch.round(radius * side).long().flatten()
    acc = torch.zeros(H, W, dtype=torch.float64)
    for i in range(0, N, batch_size):
        xc = x[i:i + batch_size].double()
        xc = xc - xc.mean(dim=(-2, -1), keepdim=True)
        acc += torch.fft.fft2(xc, norm="ortho").abs().pow(2).sum(dim=(0, 1))
    mean2d = (acc / (N * C)).flatten()
    nb = int(bins.max()) + 1
    power = torch.zeros(nb, dtype=torch.float64).scatter_add_(0, bins, mean2d)
    counts = torch.bincount(bins, minlength=nb).double()
    power = power / counts.clamp_min(1)
    freq = torch.arange(nb, dtype=torch.float64) / side
    return freq[1:].numpy(), power[1:].numpy()



@style.styled
def spectra_figure(sets: dict, *, relative_to: str | None = None, deltas: dict | None = None,
                   stamp: str | None = None) -> Figure:
    """Log-log radial power spectra of each set (name -> images), and optionally:

    - ``relative_to``: a key of ``sets`` (e.g. ``"CIFAR-10"``); adds a panel with each set's power
      divided by that one's. Above 1 at high frequency = the set carries extra high-frequency energy.
    - ``deltas``: name -> perturbations (x_adv - x); adds a panel of their spectra, each normalized to
      unit mean power, beside the flat line of white noise and the (normalized) natural-image spectrum.

    The vertical line marks the Nyquist frequency along one axis (0.5 cycles/pixel). One legend for
    all panels, above them. ``stamp``: a footer line (see :func:`advlib.viz.stamp_text`).
    """
    if not sets:
        raise ValueError("spectra_figure: no sets")
    if relative_to is not None and relative_to not in sets:
        raise ValueError(f"spectra_figure: relative_to={relative_to!r} is not one of {list(sets)}")
    spectra = {name: radial_power_spectrum(s) for name, s in sets.items()}
    npanel = 1 + (relative_to is not None) + bool(deltas)
    fig = _figure(figsize=(min(style.WIDTH, 1.2 + 2.45 * npanel), 3.3), layout="constrained")
    axes = list(fig.subplots(1, npanel, squeeze=False)[0])
    handles = {}
    ax = axes.pop(0)
    for name, (f, p) in spectra.items():
        ref = name == relative_to
        handles[name] = ax.plot(f, p, label=style.display(name), color=style.color(name), lw=2.2 if ref else 1.4)[0]
    ax.set_yscale("log")
    _freq_axis(ax)
    ax.set(ylabel="mean power |FFT|²", title="(a) power spectrum")
    if relative_to is not None:
        ax = axes.pop(0)
        f_ref, p_ref = spectra[relative_to]
        for name, (f, p) in spectra.items():
            if name != relative_to:
                ax.plot(f, p / np.maximum(p_ref, 1e-30), color=style.color(name), lw=1.4)
        ax.axhline(1.0, color=style.color(relative_to), lw=2.2)
        _log_y(ax)
        _freq_axis(ax)
        ax.set(ylabel=f"power ÷ power of {style.display(relative_to)}",
               title=f"(b) ÷ {style.display(relative_to)} (> 1: more)")
    if deltas:
        ax = axes.pop(0)
        if relative_to is not None:
            f_ref, p_ref = spectra[relative_to]
            ax.plot(f_ref, p_ref / p_ref.mean(), color=style.color(relative_to), lw=2.2)
        for k, (name, d) in enumerate(deltas.items()):
            f, p = radial_power_spectrum(d)
            ax.plot(f, p / max(p.mean(), 1e-30), color=style.color(name), lw=2.4 if k == 0 else 1.4)
        ax.axhline(1.0, color="0.3", lw=1, ls="-.")
        handles["white noise"] = Line2D([], [], color="0.3", lw=1, ls="-.", label="white noise (flat)")
        ax.set_yscale("log")
        _freq_axis(ax)
        ax.set(ylabel="power ÷ its mean", title="(c) perturbations δ")
        add_note(fig, f"(c): the perturbations of {', '.join(style.display(n) for n in deltas)} and the "
                 + (f"{style.display(relative_to)} images, " if relative_to is not None else "")
                 + "each divided by its mean power. Dotted: the Nyquist frequency along one axis.")
    fig.legend(handles=list(handles.values()), loc="outside upper center", ncols=min(len(handles), 6))
    auto_stamp(fig, stamp)
    return fig


@style.styled
def pixel_stats_figure(sets: dict, *, max_images: int = 5000, bins: int = 64, stamp: str | None = None) -> Figure:
    """Histogram of pixel values per set, and per-channel mean and standard deviation bars, one legend
    for all three panels.

    Sets are name -> images (or pairs / FeatureSets). Statistics use at most ``max_images`` images
    per set (the first ones), which is plenty for a histogram of 3·32·32 values each.
    """
    if not sets:
        raise ValueError("pixel_stats_figure: no sets")
    fig = _figure(figsize=(style.WIDTH, 3.0), layout="constrained")
    ax_h, ax_m, ax_s = fig.subplots(1, 3, width_ratios=(1.6, 1, 1))
    edges = np.linspace(0, 1, bins + 1)
    width = 0.8 / len(sets)
    handles = []
    for k, (name, s) in enumerate(sets.items()):
        x = _images(s)[:max_images]
        c = style.color(name)
        hist = torch.histc(x.clamp(0, 1), bins=bins, min=0, max=1).numpy()
        handles.append(ax_h.stairs(hist / max(hist.sum(), 1) * bins, edges, label=style.display(name), color=c,
                                   lw=1.4 if name != "CIFAR-10" else 2.2))
        mean = x.mean(dim=(0, 2, 3)).numpy()
        std = x.std(dim=(0, 2, 3)).numpy() if x.numel() > x.shape[1] else np.zeros(x.shape[1])
        pos = np.arange(len(mean)) + (k - (len(sets) - 1) / 2) * width
        ax_m.bar(pos, mean, width, label=style.display(name), color=c)
        ax_s.bar(pos, std, width, label=style.display(name), color=c)
    ax_h.set(xlabel="pixel value", ylabel="density", title="(a) pixel values, all channels", xlim=(0, 1))
    channels = ["red", "green", "blue"] if _images(next(iter(sets.values()))).shape[1] == 3 else None
    for ax, title, ylabel in ((ax_m, "(b) mean per channel", "mean pixel value"),
                              (ax_s, "(c) spread per channel", "std of pixel values")):
        ax.set(title=title, ylabel=ylabel)
        if channels:
            ax.set_xticks(range(3), channels)
        style.grid(ax, "y")
    ax_m.set_ylim(0, 1)
    fig.legend(handles=[Line2D([], [], color=h.get_edgecolor(), lw=2, label=h.get_label()) for h in handles],
               loc="outside upper center", ncols=min(len(handles), 6))
    auto_stamp(fig, stamp)
    return fig


def spectra_for(x0, sets: dict, *, stamp: str | None = None) -> Figure:
    """Spectra of CIFAR-10 and every set, relative to CIFAR-10, with the D_rand / D_det perturbations."""
    if not sets:
        return message_figure("no datasets in this run yet: run notebooks 01-02 first")
    images = {"CIFAR-10": _images(x0), **{n: s.images if isinstance(s, FeatureSet) else s for n, s in sets.items()}}
    return spectra_figure(images, relative_to="CIFAR-10", deltas=perturbations(sets, x0), stamp=stamp)


__all__ = ["radial_power_spectrum", "spectra_figure", "pixel_stats_figure", "spectra_for"]
