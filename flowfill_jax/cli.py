"""What the command-line tools share: dashed flag names and one-line errors (exit status 2)."""

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

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


def config_path(argv: list[str]) -> str | None:
  """The file named by --config (`--config=F`, `--config F`; ml_collections' `F:arg` form)."""
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      value = arg.split("=", 1)[1]
    elif arg == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
    else:
      continue
    return value if os.path.exists(value) else value.split(":", 1)[0]
  return None


def parse_dashed_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that also takes `--mask-bucket` for absl's `--mask_bucket`; a bad flag,
  a missing config file or a bad config override is a one-line error rather than absl's
  usage dump or ml_collections' traceback."""
  argv = undash(argv)
  if "config" in flags.FLAGS:  # a program with an ml_collections config file (train.py)
    path = config_path(argv)
    if path is not None and not os.path.isfile(path):
      exit_with_error(f"config file {path} does not exist")
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    exit_with_error(f"{e}\nPass --helpfull to see the flags.")
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # from config overrides
    message = str(e).replace("\\n", " ").replace("\\'", "'")[1:-1]
    exit_with_error(f"bad config override or file: {message}")


def exit_on_user_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
  """Run `fn`; a UserError becomes `error: …` on stderr and exit status 2, no traceback."""
  try:
    return fn(*args, **kwargs)
  except UserError as e:
    exit_with_error(str(e))


def exit_with_error(message: str) -> NoReturn:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)
