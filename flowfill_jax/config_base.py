"""The paper's settings (docs/design.md, "SPEC.md") as one ConfigDict, with the measured
deviations on (README "Stage 1", "Training"); `configs/<name>.py` start from it."""

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
  c.data.name = "celeba_hq"  # demo | celeba_hq | places2 | paris_streetview | image_folder
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
  # The classical fill under stage 1's base (base_fill "smooth") and G's fill_detail:
  # "biharmonic" (thin plate) or "harmonic" (membrane; runs saved before 2026-12-01).
  c.model.smooth_fill = "biharmonic"
  s = c.model.structure = ml_collections.ConfigDict()
  s.prior_size = 64
  s.levels = 4
  s.steps = 10
  s.hidden = 64
  s.encoder_cnum = 48
  s.scale_fn = "sigmoid"  # sigmoid(raw + 2) (SRFlow, Glow); "exp": the paper's exp(s), soft-clamped
  s.clamp = 3.0
  s.n_bits = 8
  # Stage-1 deviations from the paper (README "Stage 1"; experiments/notes_condition.md):
  # SPEC.md's reading of the paper: mask_mode "any", the four switches off (scale_fn as above;
  # the paper writes exp(s)).
  s.mask_mode = "fraction"  # what E sees of M↓: "any" (any-hole, SPEC.md) or "fraction" (share missing)
  s.residual = True  # f models I_s − base (known low-res content; in the hole, see base_fill)
  s.base_fill = "smooth"  # the base in the hole: a "smooth" (pull-push) fill or E's "coarse" output
  s.lowres_condition = True  # space-to-depth of [base, M↓, known share] appended to every ft_l
  # Width of a 1×1 projection of that space-to-depth (0: appended as is; its 5·4^(l+1)
  # channels then dominate f's parameters at the coarse levels).
  s.lowres_width = 0
  s.cond_norm = True  # ActNorm on every ft_l
  s.learn_top = True  # conditional prior for z_L (Glow's learntop) instead of N(0, I)
  s.scan_unroll = 0  # flow steps per scan iteration; 0 = all (fully unrolled, fastest)

  t = c.model.texture = ml_collections.ConfigDict()
  t.base_features = 64
  t.num_res_blocks = 8
  t.disc_features = (64, 128, 256, 512)
  t.disc_with_mask = False
  t.gan_loss = "nonsaturating"  # or "hinge"
  # G's ×2 up-convs: "icnr" (transposed, ICNR init: no checkerboard at init), "transpose"
  # (same layers, default init) or "resize" (nearest ×2 + 3×3 gated conv)
  t.upsample = "icnr"
  # G's output as a zero-init correction to the logit of the bicubic prior (models/generator.py)
  t.residual_output = True
  t.fill_detail = True  # residual base + the full-res smooth fill's detail (models/generator.py)
  t.skips = True  # U-Net skips from the encoder's H and H/2 features (models/generator.py)

  c.structure = _stage(steps=300_000, batch_size=16, lr=5e-4, b1=0.9, b2=0.999,
                       lr_halvings=(0.5, 0.75, 0.9, 0.95))
  c.structure.temperature = 0.8
  c.structure.coarse_l1_weight = 1.0  # auxiliary ℓ1 of E's coarse output against I_gt↓

  c.texture = _stage(steps=300_000, batch_size=8, lr=1e-4, b1=0.0, b2=0.9, lr_halvings=())
  c.texture.adv_weight = 0.1
  c.texture.l1_weight = 1.0
  c.texture.max_noise_fraction = 0.5  # fraction of z replaced by noise, drawn up to this
  # ICT's guided upsampler (which the paper's stage-2 settings are): README "Training".
  c.texture.l1_mode = "raw_hole_normalized"  # mean|G_raw − gt| / mean(M); or "composite"
  c.texture.d_lr_ratio = 0.1  # D's learning rate = this × G's (ICT's D2G_LR)
  c.texture.perceptual_weight = 0.0  # VGG perceptual loss on G's raw output (ICT: 0.1)
  c.texture.style_weight = 0.0  # VGG Gram style loss in the hole (ICT: 250)
  c.texture.paste_known_prior = True  # G's prior gets I_m↓'s fully known low-res pixels
  return c


def small_model(c: ml_collections.ConfigDict) -> None:
  """The small model that trains on 2 CPU cores (configs/demo.py, configs/photos.py): 64²
  images, a 16² prior (L=3, K=4), a narrow E and G, and their optimiser settings."""
  c.data.image_size = 64
  s = c.model.structure
  s.prior_size, s.levels, s.steps, s.hidden, s.encoder_cnum = 16, 3, 4, 32, 16
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
