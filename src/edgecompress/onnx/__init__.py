"""Export to the deployable format (ONNX)."""

from edgecompress.onnx.export import export_model, export_onnx

__all__ = ["export_model", "export_onnx"]
