"""Flow-Fill in JAX/Flax: diverse image inpainting with a conditional normalizing flow."""

__version__ = "0.1.0"
