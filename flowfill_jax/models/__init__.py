"""Networks of both stages: the conditional flow with its encoder, and the texture GAN."""
