"""ONNX -> torch conversion of a deployed graph for white-box gradients: graph rewrites, opset lowering, Q/DQ."""
