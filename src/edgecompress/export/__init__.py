"""Export to the deployable format (ONNX)."""

from edgecompress.export.onnx_export import export_onnx

__all__ = ["export_onnx"]
