"""ONNX Runtime engine with the CPU, CUDA and TensorRT execution providers.

ONNX Runtime silently falls back to the CPU when a provider cannot start; this engine checks the
session's active providers and stops with a clear error instead, so that an audit labelled "cuda"
really ran on the GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.engines.base import ENGINES, EngineInfo, TensorInfo
from audit.errors import EngineError, ModelError, require

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


@ENGINES.register("onnxruntime")
class OrtEngine:
    """An ONNX model in an ONNX Runtime session.

    Example:
        >>> engine = OrtEngine("model.onnx", provider="cpu")  # doctest: +SKIP
        >>> engine.run({engine.inputs[0].name: batch})  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, provider: str = "cpu", *, fp16: bool = False, cache_dir: str | None = None,
                 threads: int | None = None, device_id: int = 0, spin: bool = True):
        ort = require("onnxruntime", "cpu", "Running ONNX models")
        if provider not in PROVIDERS:
            raise EngineError(f"unknown provider '{provider}'; valid: {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[provider]
        available = ort.get_available_providers()
        if wanted not in available:
            raise EngineError(f"provider {provider} ({wanted}) is not available in this ONNX Runtime (has {', '.join(available)}); "
                              "install onnxruntime-gpu: pip install 'robustaudit[gpu]' on a machine with CUDA")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        if not spin:  # idle engine threads sleep: other processes on the same cores (corruption workers) get them
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = [(wanted, self._provider_options(provider, fp16, cache_dir, device_id))]
        if provider == "tensorrt":
            providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
        if wanted != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            reason = str(exc).splitlines()[0][:200]
            if "provider" in reason.lower() or "cuda" in reason.lower():
                raise EngineError(f"ONNX Runtime could not start provider {provider}: {reason}") from None
            raise ModelError(f"{path} is not a valid ONNX model ({reason}); re-export it") from None
        active = self.session.get_providers()
        if active[0] != wanted:
            raise EngineError(f"provider {provider} was requested but ONNX Runtime runs on {active[0]} "
                              "(it fell back silently); check the CUDA / cuDNN / TensorRT installation")
        meta = self.session.get_modelmeta().custom_metadata_map
        self._meta = dict(meta)
        precision = self._meta.get("precision") or ("fp16" if self.inputs[0].dtype == np.float16 else "fp32")
        self.info = EngineInfo("onnxruntime", provider, "fp16" if fp16 and provider == "tensorrt" else precision,
                               active, None if provider == "cpu" else f"cuda:{device_id}")

    @staticmethod
    def _provider_options(provider: str, fp16: bool, cache_dir: str | None, device_id: int) -> dict:
        if provider == "cpu":
            return {}
        if provider == "cuda":
            return {"device_id": device_id}
        opts = {"device_id": device_id, "trt_fp16_enable": bool(fp16)}
        if cache_dir:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            opts.update({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)})
        return opts

    @property
    def inputs(self) -> list[TensorInfo]:
        return [TensorInfo(i.name, tuple(i.shape), np.dtype(_DTYPES.get(i.type, np.float32))) for i in self.session.get_inputs()]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [TensorInfo(o.name, tuple(o.shape), np.dtype(_DTYPES.get(o.type, np.float32))) for o in self.session.get_outputs()]

    def metadata(self) -> dict[str, str]:
        return dict(self._meta)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(None, feeds)
        except Exception as exc:  # shape / type mismatches surface here
            shapes = {k: list(v.shape) for k, v in feeds.items()}
            raise ModelError(f"the model failed on inputs {shapes}: {str(exc).splitlines()[0][:200]}") from None
