"""Training and fine-tuning loops."""

from edgecompress.train.loop import train_epochs

__all__ = ["train_epochs"]
