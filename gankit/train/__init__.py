"""Training: one explicit alternating step (``step``) and the loop around it (``loop``)."""

from gankit.train.loop import train
from gankit.train.step import discriminator_step, generator_step

__all__ = ["train", "discriminator_step", "generator_step"]
