"""The paper's model and training (docs/design.md) as one ConfigDict, and the presets the
shipped configs build on.

`base_config()` is the paper with every deviation off: its model is `StructurePrior()`'s and
`TextureGenerator()`'s defaults (tests/test_configs.py). `measured_improvements` turns on this
project's deviations, each measured to help (docs/training.md, experiments/notes_*.md);
`small_model` sizes the model for 2 CPU cores.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Stages run in order; `--config.stages=texture` runs stage 2 alone from an
  # existing stage-1 workdir.
  c.stages = ("structure", "texture")

  c.mesh = ml_collections.ConfigDict()
  c.mesh.num_devices = 0  # 0 = every device JAX sees, on every host

  c.data = ml_collections.ConfigDict()
  c.data.name = "celeba_hq"  # demo | photos | celeba_hq | places2 | paris_streetview | image_folder
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.manual_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.image_size = 256
  c.data.mask_bucket = "random"  # 20-40 | 40-60 | random (20-60) | "lo-hi"
  c.data.batch_size = 16  # global; each stage sets its own
  c.data.num_workers = 0
  c.data.mask_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.invert_mask = False
  c.data.train_split = "train"
  c.data.eval_split = "test"

  c.model = ml_collections.ConfigDict()
  # Dtype of E's, G's and D's convolutions: "bfloat16" on GPUs/TPUs halves their memory traffic;
  # parameters, optimiser state and the flow's bijections stay float32 (exact densities).
  c.model.compute_dtype = "float32"
  # The classical fill (`image_ops.smooth_fill`) under stage 1's hole_base "smooth" and G's
  # smooth_fill_detail: "biharmonic" (thin plate) or "harmonic" (membrane).
  c.model.smooth_fill_method = "biharmonic"
  s = c.model.structure = ml_collections.ConfigDict()  # StructurePrior's fields
  s.prior_size = 64
  s.levels = 4
  s.steps = 10
  s.hidden = 64
  s.encoder_cnum = 48
  s.scale_fn = "sigmoid"  # sigmoid(raw + 2) (SRFlow, Glow); "exp": the paper's exp(s), soft-clamped
  s.clamp = 3.0
  s.n_bits = 8
  s.mask_mode = "any"  # what E sees of M↓: "any" (any-hole) or "fraction" (share missing)
  s.residual = False  # f models I_s − base (known low-res content; in the hole, hole_base's)
  s.hole_base = "coarse"  # the base in the hole: E's "coarse" output or a "smooth" fill
  s.lowres_condition = False  # space-to-depth of [base, M↓, known share] appended to every ft_l
  # Width of a 1×1 projection of that space-to-depth (0: appended as is; its 5·4^(l+1)
  # channels then dominate f's parameters at the coarse levels).
  s.lowres_width = 0
  s.cond_norm = False  # ActNorm on every ft_l
  s.learn_top = False  # conditional prior for z_L (Glow's learntop) instead of N(0, I)
  s.scan_unroll = 0  # flow steps per scan iteration; 0 = all (fully unrolled, fastest)

  t = c.model.texture = ml_collections.ConfigDict()  # TextureGenerator's and D's fields
  t.base_features = 64
  t.num_res_blocks = 8
  t.disc_features = (64, 128, 256, 512)
  t.disc_with_mask = False
  # G's ×2 up-convs: "transpose" (ICT's 4×4/2 transposed convs), "icnr" (the same, ICNR init:
  # no checkerboard at init) or "resize" (nearest ×2 + 3×3 gated conv)
  t.upsample = "transpose"
  # G's output as a zero-init correction to the logit of the bicubic prior (models/generator.py)
  t.residual_output = False
  t.smooth_fill_detail = False  # residual base + the full-res smooth fill's detail
  t.skips = False  # U-Net skips from the encoder's H and H/2 features (models/generator.py)
  t.paste_known_prior = False  # G's prior gets I_m↓'s fully known low-res pixels (pipeline.py)

  c.structure = _stage(steps=300_000, batch_size=16, lr=5e-4, b1=0.9, b2=0.999,
                       lr_halvings=(0.5, 0.75, 0.9, 0.95))
  c.structure.coarse_l1_weight = 0.0  # auxiliary ℓ1 of E's coarse output against I_gt↓

  # Stage 2 is trained as ICT's guided upsampler (which the paper's stage-2 settings are).
  c.texture = _stage(steps=300_000, batch_size=8, lr=1e-4, b1=0.0, b2=0.9, lr_halvings=())
  c.texture.gan_loss = "nonsaturating"  # or "hinge"
  c.texture.adv_weight = 0.1
  c.texture.l1_weight = 1.0
  c.texture.max_noise_fraction = 0.5  # fraction of z replaced by noise, drawn up to this
  c.texture.prior_noise_temperature = 0.8  # τ of that noise
  c.texture.l1_mode = "raw_hole_normalized"  # mean|G_raw − gt| / mean(M); or "composite"
  c.texture.d_lr_ratio = 0.1  # D's learning rate = this × G's (ICT's D2G_LR)
  c.texture.perceptual_weight = 0.0  # VGG perceptual loss on G's raw output (ICT: 0.1)
  c.texture.style_weight = 0.0  # VGG Gram style loss in the hole (ICT: 250)

  c.sample = ml_collections.ConfigDict()
  # Sampling temperature τ (z ~ N(0, τ²I)): the default of sampling, evaluation and sheets.
  c.sample.temperature = 0.8
  return c


def measured_improvements(c: ml_collections.ConfigDict) -> None:
  """This project's deviations from the paper, each measured to help (docs/training.md):
  stage 1 models the residual from a smooth fill and sees the low-res input at every level
  (experiments/notes_condition.md); G corrects its own upsampled prior at full resolution
  (experiments/notes_texture.md)."""
  s = c.model.structure
  s.mask_mode = "fraction"
  s.residual = True
  s.hole_base = "smooth"
  s.lowres_condition = True
  s.lowres_width = 32  # keeps the paper-size E + f at 18M parameters (38M unprojected)
  s.cond_norm = True
  s.learn_top = True
  t = c.model.texture
  t.upsample = "icnr"
  t.residual_output = True
  t.smooth_fill_detail = True
  t.skips = True
  t.paste_known_prior = True
  c.structure.coarse_l1_weight = 1.0


def small_model(c: ml_collections.ConfigDict) -> None:
  """The small model that trains on 2 CPU cores (configs/demo.py, configs/photos.py): 64²
  images, a 16² prior (L=3, K=4), a narrow E and G, and their optimiser settings."""
  c.data.image_size = 64
  s = c.model.structure
  s.prior_size, s.levels, s.steps, s.hidden, s.encoder_cnum = 16, 3, 4, 32, 16
  s.lowres_width = 0  # at 16² the space-to-depth is small (20–320 channels)
  t = c.model.texture
  t.base_features, t.num_res_blocks, t.disc_features = 16, 2, (16, 32, 64, 64)
  # Nearest ×2 + conv up-sampling: as good as ICNR transposed convs here and 1.75× faster to train
  # on XLA:CPU, which runs transposed convs slowly (experiments/notes_texture.md).
  t.upsample = "resize"
  c.structure.batch_size, c.structure.lr = 16, 1e-3
  c.texture.batch_size, c.texture.lr = 8, 5e-4
  # The paper's 0.1 left coloured specks in the demo's holes; 0.03 gave completions closer to
  # the truth (VGG LPIPS) with diversity above 0.05 (experiments/notes_texture.md §7).
  c.texture.adv_weight = 0.03


def _stage(**kw) -> ml_collections.ConfigDict:
  s = ml_collections.ConfigDict()
  s.steps = kw["steps"]
  s.batch_size = kw["batch_size"]
  s.lr = kw["lr"]
  s.b1 = kw["b1"]
  s.b2 = kw["b2"]
  s.lr_halvings = kw["lr_halvings"]
  s.grad_clip = 0.0  # 0 = off
  s.log_every = 100
  s.checkpoint_every = 5000
  s.keep_checkpoints = 3
  s.eval_every = 5000
  s.eval_batches = 16
  s.sample_every = 5000
  s.num_samples = 4
  s.sample_inputs = 6
  return s
