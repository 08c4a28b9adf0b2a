"""advlib: reproduce and extend "Adversarial Examples Are Not Bugs, They Are Features"
(Ilyas et al., NeurIPS 2019). No import-time side effects: import submodules as needed."""

__version__ = "0.1.0"
