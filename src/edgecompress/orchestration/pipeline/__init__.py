"""The compression pipeline: ordered stages, each measured on the artifact it produces."""
