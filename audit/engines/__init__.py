"""Inference engines: ONNX Runtime (CPU, CUDA, TensorRT providers) and native TensorRT engines."""
