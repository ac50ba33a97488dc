"""Variants of the GAN game: MMD (GMMN, MMD-GAN), AdaGAN, InfoGAN, semi-supervised."""
