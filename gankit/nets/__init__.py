"""Generator and discriminator networks. Discriminators always return logits."""

from gankit.nets.mlp import MLPDiscriminator, MLPGenerator, sample_latent

__all__ = ["MLPDiscriminator", "MLPGenerator", "sample_latent"]
