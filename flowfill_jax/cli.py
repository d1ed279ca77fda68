"""What the command-line tools share: dashed flag names and one-line errors."""

import sys

from absl import flags

from flowfill_jax.errors import UserError


def parse_dashed_flags(argv):
  """absl flag parsing that also takes `--mask-bucket` for absl's `--mask_bucket`."""
  def normalise(arg):
    if not arg.startswith("--"):
      return arg
    name, eq, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + eq + value
  return flags.FLAGS([argv[0]] + [normalise(a) for a in argv[1:]])


def exit_on_user_error(fn, *args, **kwargs):
  """Run `fn`; a UserError becomes `error: …` on stderr and exit status 2, no traceback."""
  try:
    return fn(*args, **kwargs)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
