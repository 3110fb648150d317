"""Test helpers: tiny models trained or built in the tests and exported to ONNX."""
