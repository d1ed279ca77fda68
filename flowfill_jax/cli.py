"""What the command-line tools share: dashed flag names and one-line errors (exit status 2)."""

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import ml_collections
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
  path = None
  if "config" in flags.FLAGS:  # a program with an ml_collections config file (train.py)
    path = config_path(argv)
    if path is not None and not os.path.isfile(path):
      exit_with_error(f"config file {path} does not exist")
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    if "Error whilst parsing config file" in str(e):  # get_config raised; absl holds its traceback
      exit_with_error(f"config file {path} failed to load: {str(e).strip().splitlines()[-1]}")
    exit_with_error(f"{e}\nPass --helpfull to see the flags.")
  except SyntaxError as e:
    exit_with_error(f"config file {e.filename or path}, line {e.lineno}: {e.msg}")
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # from config overrides
    if "attribute 'get_config'" in str(e):
      exit_with_error(f"config file {path} defines no get_config() function")
    exit_with_error(f"bad config override or config file {path}: {_config_error_message(e)}")
  except Exception as e:  # raised by the config file's own code
    exit_with_error(f"config file {path} failed to load: {type(e).__name__}: {e}")
  if path is not None and not isinstance(flags.FLAGS.config, ml_collections.ConfigDict):
    exit_with_error(f"config file {path}: get_config() returned a "
                    f"{type(flags.FLAGS.config).__name__}, not an ml_collections.ConfigDict")
  return rest


def _config_error_message(error: BaseException) -> str:
  """ml_collections wraps a missing field's KeyError in an AttributeError: name the field."""
  while error.args and isinstance(error.args[0], BaseException):
    error = error.args[0]
  if isinstance(error, KeyError) and error.args:
    return f"the config has no field {str(error.args[0]).strip(chr(39))!r}"
  return str(error).replace("\\n", " ").replace("\\'", "'")


def exit_on_user_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
  """Run `fn`; a UserError becomes `error: …` on stderr and exit status 2, no traceback."""
  try:
    return fn(*args, **kwargs)
  except UserError as e:
    exit_with_error(str(e))


def exit_with_error(message: str) -> NoReturn:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)
