"""Training and fine-tuning loops."""

from edgecompress.core.train.loop import train_epochs

__all__ = ["train_epochs"]
