"""Exporters: torch models and fine-tuned checkpoints -> ONNX (FP32 / FP16 / INT8) and TensorRT engines."""
