"""What the widgets share: images as PNG bytes, predictions, a magnified difference, a small curve,
and displaying a widget object by ending a cell with it."""

from __future__ import annotations

import html
import io

import numpy as np
import torch
from PIL import Image

from ..utils import model_device

PAD = "style='padding: 1px 12px 1px 0; text-align: left'"  # table cells of every widget


def to_png(img: torch.Tensor, scale: int = 6) -> bytes:
    """[C,H,W] float in [0,1] -> PNG bytes, upscaled ``scale`` times with nearest-neighbour pixels."""
    img = torch.as_tensor(img).detach().cpu().float().clamp(0, 1)
    arr = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    pil = Image.fromarray(np.ascontiguousarray(arr))
    if scale != 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, softmax confidence) per image, on the CPU; batches of ``batch_size`` on the
    model's device, in eval mode (restored after) on the attacks' folded view of the model in
    channels-last layout (``advlib.attacks.folded``: ~4x faster on the CPU than the plain model)."""
    from ..attacks import eval_mode, folded

    device = model_device(model)
    with eval_mode(model), torch.no_grad():  # not inference_mode: the folded weights outlive this call
        run = folded(model)
        probs = [run(x[i:i + batch_size].to(device).contiguous(memory_format=torch.channels_last))
                 .float().softmax(dim=1).cpu() for i in range(0, len(x), batch_size)]
    conf, pred = (torch.cat(probs) if probs else torch.zeros(0, 1)).max(dim=1)
    return pred, conf


def class_name(class_names, y) -> str:
    y = int(y)
    return class_names[y] if 0 <= y < len(class_names) else str(y)


def esc(text) -> str:
    return html.escape(str(text))


def magnification(deltas, magnify: float | None = None) -> float:
    """The factor f that shows differences as 0.5 + f·δ: ``magnify``, or (None) the one at which the
    largest |δ| among ``deltas`` fills the range (1 when all are zero)."""
    if magnify is not None:
        return float(magnify)
    peak = max((float(d.abs().max()) for d in deltas if d.numel()), default=0.0)
    return 0.5 / peak if peak > 0 else 1.0


class Curve:
    """A small line plot of ``values`` over ``steps``, drawn once with matplotlib's Agg canvas (no
    pyplot); :meth:`png` adds a marker at one point with PIL (a millisecond, not a redraw)."""

    def __init__(self, steps, values, *, ylabel: str = "feature distance", width: float = 2.6,
                 height: float = 1.7, dpi: int = 80):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0.24, 0.26, 0.72, 0.66))
        ax.plot(steps, values, color="C0", lw=1.2)
        ax.set_xlabel("step", fontsize=7, labelpad=1)
        ax.set_ylabel(ylabel, fontsize=7, labelpad=1)
        ax.tick_params(labelsize=6, length=2, pad=1)
        ax.set_ylim(bottom=0, top=max(max(values, default=0.0), 1e-12) * 1.05)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        self.background = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
        xy = ax.transData.transform(np.column_stack([np.asarray(steps, float), np.asarray(values, float)]))
        self.points = [(float(px), rgba.shape[0] - float(py)) for px, py in xy]  # PIL's y runs down

    def png(self, current: int) -> bytes:
        """PNG bytes of the plot with a red marker at point ``current``."""
        from PIL import ImageDraw

        im = self.background.copy()
        x, y = self.points[current]
        ImageDraw.Draw(im).ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=(214, 39, 40))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()


def tag(widget, css: str):
    """``widget`` with the stable CSS class ``css`` added (tests and styling find it by that)."""
    widget.add_class(css)
    return widget


class Displayable:
    """Shows ``self.widget`` when the object ends a cell (or is passed to ``display``)."""

    widget = None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
