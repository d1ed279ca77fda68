"""What the command-line tools share: dashed flag names and one-line errors."""

import sys
from collections.abc import Callable
from typing import Any

from absl import flags

from flowfill_jax.errors import UserError


def undash(argv: list[str]) -> list[str]:
  """`--mask-bucket=x` → `--mask_bucket=x` (flag names only, values untouched)."""
  def normalise(arg):
    if not arg.startswith("--"):
      return arg
    name, eq, value = arg[2:].partition("=")
    return "--" + name.replace("-", "_") + eq + value
  return [argv[0]] + [normalise(a) for a in argv[1:]]


def parse_dashed_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that also takes `--mask-bucket` for absl's `--mask_bucket`."""
  return flags.FLAGS(undash(argv))


def exit_on_user_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
  """Run `fn`; a UserError becomes `error: …` on stderr and exit status 2, no traceback."""
  try:
    return fn(*args, **kwargs)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
