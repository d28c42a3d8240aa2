"""Distillation: train a compressed model to give the uncompressed model's outputs again, without labels."""

from edgecompress.techniques.distill.loop import DistillReport, distill, length_grouped
from edgecompress.techniques.distill.stage import Distill, distill_stage

__all__ = ["Distill", "DistillReport", "distill", "distill_stage", "length_grouped"]
