"""robustaudit: common-corruption robustness audits of exported vision models.

The `audit` package is the auditor and its CLI. It needs no torch: a deployment box has ONNX Runtime
or TensorRT only.
"""

__version__ = "0.1.0"
