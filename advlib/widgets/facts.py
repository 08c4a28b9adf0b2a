"""Per-image facts of one feature dataset for the explorer: what its meta.json records per row, and
what is cheap to recompute where it does not.

What ``advlib.construct`` writes into meta.json per row (``_merge_meta``): ``source_indices`` for every
set; ``start_indices``, ``rel_distance`` and ``agree`` for D_R / D_NR; ``targets``, ``orig_labels`` and
``hit`` for D_rand / D_det. A per-row fact is read from meta.json when a list of the set's length is
there under those names; sets built before those lists were recorded (and the authors' release) get
it recomputed: the original's class from the training labels at ``source_indices``; an attack's hit
as "the source model predicts the target" and a matched image's agreement as "the source model
predicts the label" (one forward pass over the set, on first use, cached); the matching distance of
the image on screen with the source model (two forward passes). Recomputed facts say so."""

from __future__ import annotations

import torch

from .common import class_name, esc, predict

# filter key -> what the dropdown says
FILTERS = {
    "all": "all images",
    "hit": "attack hit its target",
    "miss": "attack missed its target",
    "target_is_label": "target = true label",
    "target_not_label": "target ≠ true label",
    "agree": "source model predicts the label",
    "disagree": "source model misses the label",
    "start_same": "started from the label's class",
    "start_other": "started from another class",
}
# the source model of each set when meta.json does not name it (advlib.construct.source_role)
DEFAULT_ROLE = {"d_robust": "robust", "d_non_robust": "standard", "d_rand": "targeted", "d_det": "targeted"}


def _rows(meta: dict, key: str, n: int, dtype=torch.long) -> torch.Tensor | None:
    """meta[key] as a tensor when it is a per-row list of this set's length, else None (a summary)."""
    v = meta.get(key)
    if not isinstance(v, (list, tuple)) or len(v) != n:
        return None
    return torch.as_tensor(v, dtype=dtype)


def source_role(name: str, meta: dict, models: dict) -> str | None:
    """The role of the model that built the set: meta.json ``source_model.which``, else (a set that
    advlib.construct built: meta.json names its ``algorithm``) the default, the targeted sets falling
    back to "standard" when no "targeted" model is loaded. None for a set of unknown origin (the
    released sets: the authors' models built them, not this run's)."""
    which = (meta.get("source_model") or {}).get("which") if isinstance(meta.get("source_model"), dict) else None
    if not which and "algorithm" not in meta:
        return None
    role = which or DEFAULT_ROLE.get(name)
    if role == "targeted" and role not in models and not which:
        role = "standard"
    return role


class SetFacts:
    """Facts about the rows of one set (``images``, ``labels``, its ``meta``), and the filters they allow.

    originals: (images, labels) of the training set, or None; source_indices / start_indices: per-row
    indices into it (or None); model: the set's source model (or None) and ``role`` its name."""

    def __init__(self, name, images, labels, meta: dict, originals=None, source_indices=None, start_indices=None,
                 model=None, role: str | None = None, class_names=()):
        self.name, self.images, self.labels, self.meta = name, images, labels, dict(meta or {})
        self.n = n = len(labels)
        self.model, self.role, self.class_names = model, role or "source", tuple(class_names)
        self.originals = originals
        self.source_indices, self.start_indices = source_indices, start_indices
        self.targets = _rows(self.meta, "targets", n)
        self.orig_labels = _rows(self.meta, "orig_labels", n)
        self.orig_from = "meta.json"
        if self.orig_labels is None and self._linked(source_indices):
            self.orig_labels, self.orig_from = originals[1][source_indices], "training labels"
        self.start_labels = originals[1][start_indices] if self._linked(start_indices) else None
        self.matched = start_indices is not None or self.meta.get("algorithm") == "representation_matching"
        self._recorded = {"hit": _rows(self.meta, "hit", n, torch.bool), "agree": _rows(self.meta, "agree", n, torch.bool)}
        self.rel_distance = _rows(self.meta, "rel_distance", n, torch.float64)
        self._computed: dict[str, torch.Tensor] = {}
        self.model_calls = 0  # full-set forward passes so far (tests count them)

    def _linked(self, idx) -> bool:
        o = self.originals
        return o is not None and idx is not None and (len(idx) == 0 or (int(idx.min()) >= 0 and int(idx.max()) < len(o[1])))

    # -- whole-set facts -----------------------------------------------------------------------
    def _model_fact(self, key: str) -> torch.Tensor | None:
        """Per-row ``hit`` (prediction == target) or ``agree`` (prediction == label): recorded, else
        computed once with the source model, else None."""
        if self._recorded[key] is not None:
            return self._recorded[key]
        want = self.targets if key == "hit" else self.labels
        if self.model is None or want is None:
            return None
        if key not in self._computed:
            pred, _ = predict(self.model, self.images)
            self.model_calls += 1
            self._computed["hit"] = pred == self.targets if self.targets is not None else None
            self._computed["agree"] = pred == self.labels
        return self._computed[key]

    def pending(self, key: str) -> str | None:
        """What choosing filter ``key`` will compute first (a forward pass over the set), or None."""
        base = {"miss": "hit", "disagree": "agree"}.get(key, key)
        if base not in self._recorded or self._recorded[base] is not None or base in self._computed:
            return None
        return f"predicting the {self.n} images of {self.name} with the {self.role} model (once)…"

    def can(self, key: str) -> bool:
        """Whether filter ``key`` is available for this set (without computing anything)."""
        model_ok = lambda k: self._recorded[k] is not None or self.model is not None  # noqa: E731
        return {
            "all": True,
            "hit": self.targets is not None and model_ok("hit"),
            "miss": self.targets is not None and model_ok("hit"),
            "target_is_label": self.targets is not None and self.orig_labels is not None,
            "target_not_label": self.targets is not None and self.orig_labels is not None,
            "agree": self.matched and model_ok("agree"),
            "disagree": self.matched and model_ok("agree"),
            "start_same": self.start_labels is not None,
            "start_other": self.start_labels is not None,
        }[key]

    def filters(self) -> list[tuple[str, str]]:
        """(dropdown label, key) of each available filter; counts where no model has to run for them."""
        out = []
        for key, text in FILTERS.items():
            if not self.can(key):
                continue
            out.append((text if self.pending(key) else f"{text} ({int(self.mask(key).sum())})", key))
        return out

    def mask(self, key: str) -> torch.Tensor:
        """Bool [N]: the rows filter ``key`` keeps (ValueError when it is not available)."""
        if not self.can(key):
            raise ValueError(f"{self.name}: filter {key!r} needs facts this set lacks")
        if key == "all":
            return torch.ones(self.n, dtype=torch.bool)
        if key in ("hit", "miss"):
            hit = self._model_fact("hit")
            return hit if key == "hit" else ~hit
        if key in ("agree", "disagree"):
            agree = self._model_fact("agree")
            return agree if key == "agree" else ~agree
        if key in ("target_is_label", "target_not_label"):
            same = self.targets == self.orig_labels
            return same if key == "target_is_label" else ~same
        same = self.start_labels == self.labels
        return same if key == "start_same" else ~same

    # -- one row ----------------------------------------------------------------------------------
    def _cname(self, y) -> str:
        return class_name(self.class_names, y)

    def _one(self, img: torch.Tensor) -> tuple[int, float]:
        pred, conf = predict(self.model, img[None])
        return int(pred[0]), float(conf[0])

    def row_html(self, row: int, img: torch.Tensor, original: torch.Tensor | None) -> str:
        """The facts of row ``row`` (its image ``img``, its matched original or None) as HTML lines."""
        out = []
        if self.orig_labels is not None:
            out.append(f"true class of the original: <b>{esc(self._cname(self.orig_labels[row]))}</b>"
                       + ("" if self.orig_from == "meta.json" else f" <i>({esc(self.orig_from)})</i>"))
        if self.targets is not None:
            t = int(self.targets[row])
            line = f"target class: <b>{esc(self._cname(t))}</b>"
            if self.orig_labels is not None:
                line += f" (target = true label: <b>{'yes' if t == int(self.orig_labels[row]) else 'no'}</b>)"
            out.append(line)
            out.append(self._hit_line(row, img, t))
        if self.matched:
            out.append(self._distance_line(row, img, original))
            out.append(self._agree_line(row, img))
            if self.start_labels is not None:
                out.append(f"started from training image #{int(self.start_indices[row])}, class "
                           f"<b>{esc(self._cname(self.start_labels[row]))}</b>")
        return "<br>".join(line for line in out if line)

    def _hit_line(self, row, img, t) -> str:
        rec = self._recorded["hit"]
        if rec is not None:
            return f"attack hit its target: <b>{'yes' if rec[row] else 'no'}</b> <i>(meta.json)</i>"
        if self.model is None:
            return "attack hit its target: <i>not recorded in meta.json, and no source model loaded</i>"
        if "hit" in self._computed:
            return (f"attack hit its target: <b>{'yes' if self._computed['hit'][row] else 'no'}</b> "
                    f"<i>(recomputed with the {esc(self.role)} model)</i>")
        p, c = self._one(img)
        return (f"attack hit its target: <b>{'yes' if p == t else 'no'}</b> <i>(recomputed: the {esc(self.role)} "
                f"model predicts {esc(self._cname(p))}, {c:.0%})</i>")

    def _agree_line(self, row, img) -> str:
        rec = self._recorded["agree"]
        if rec is not None:
            return f"source model predicts the label: <b>{'yes' if rec[row] else 'no'}</b> <i>(meta.json)</i>"
        if self.model is None:
            return ""
        p, c = self._one(img)
        return (f"the {esc(self.role)} model (source) predicts <b>{esc(self._cname(p))}</b> ({c:.0%}); "
                f"label {esc(self._cname(self.labels[row]))}")

    def _distance_line(self, row, img, original) -> str:
        what = "matching distance ‖g(x_r) − g(x)‖₂ / ‖g(x)‖₂"
        if self.rel_distance is not None:
            return f"{what} = <b>{float(self.rel_distance[row]):.4f}</b> <i>(meta.json)</i>"
        if self.model is None or original is None or not callable(getattr(self.model, "features", None)):
            return (f"{what}: <i>meta.json records only its summary (mean "
                    f"{(self.meta.get('final_rel_distance') or {}).get('mean', float('nan')):.4f})</i>")
        from ..attacks import representation_distance
        from ..utils import model_device

        dev = model_device(self.model)
        d = float(representation_distance(self.model, img[None].to(dev), original[None].to(dev), relative=True)[0])
        return f"{what} = <b>{d:.4f}</b> <i>(recomputed with the {esc(self.role)} model)</i>"
