"""Quantization into formats ONNX Runtime runs fast."""
