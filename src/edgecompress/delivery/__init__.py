"""Delivery: ship a model at its real storage size (packed `.ecz` files) and restore the exact ONNX file."""

from edgecompress.delivery.packed import PackInfo, TensorPacking, pack, unpack, unpack_to

__all__ = ["pack", "unpack", "unpack_to", "PackInfo", "TensorPacking"]
