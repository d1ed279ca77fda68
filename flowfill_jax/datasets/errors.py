"""Dataset errors: what was expected where. UserErrors, so the CLIs print them as one line."""

from flowfill_jax.errors import UserError


class DatasetError(UserError, ValueError):
  """A dataset, split, mask set or bucket that is not what the config asks for."""


class DataNotFoundError(DatasetError, FileNotFoundError):
  """A folder, split or file that is not there, or holds nothing usable."""
