"""advlib: reproduce and extend "Adversarial Examples Are Not Bugs, They Are Features"
(Ilyas et al., NeurIPS 2019, arXiv 1905.02175).

The main verbs are available at the top level and imported lazily, on first use (``import advlib``
itself loads nothing heavy and has no side effects)::

    advlib.pgd(model, x, y, eps=0.5, step_size=0.1, steps=20)      # images in [0,1], NCHW
    advlib.accuracy(model, x, y); advlib.robust_accuracy(model, x, y, eps=0.25, attack="worst")
    advlib.claims(results)          # the paper's claims with verdicts, from a results.json dict
    advlib.fit(model, x, y, advlib.TrainConfig(arch="my_net", epochs=10))   # any nn.Module
    advlib.build_targeted_set(model, x, y, rule="det", eps=0.5, step_size=0.1, steps=100)
    advlib.build_robust_set(model, x, y, steps=1000, step_size=0.1, features="layer4")
    advlib.save_feature_dataset(path, images, labels); advlib.load_feature_dataset(path)
"""

__version__ = "0.1.0"

# name -> submodule that defines it
_LAZY = {
    "pgd": "attacks",
    "accuracy": "evaluate",
    "robust_accuracy": "evaluate",
    "claims": "verdicts",
    "fit": "train",
    "TrainConfig": "recipes",
    "build_targeted_set": "builders",
    "build_robust_set": "builders",
    "load_feature_dataset": "data",
    "save_feature_dataset": "data",
    "load_cifar10": "data",
    "build_model": "models",
    "set_seed": "utils",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"advlib.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'advlib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = sorted(_LAZY)
