"""Training: the costs (``costs``), one explicit alternating step (``step``), the state a
checkpoint holds (``state``), the options that need state (``tricks``) and the loop
around them (``loop``)."""

from gankit.training.costs import Batch, Cost, discriminator_cost, generator_cost
from gankit.training.loop import run_training
from gankit.training.state import TrainState
from gankit.training.step import discriminator_step, generator_step

__all__ = ["Batch", "Cost", "TrainState", "discriminator_cost", "discriminator_step",
           "generator_cost", "generator_step", "run_training"]


