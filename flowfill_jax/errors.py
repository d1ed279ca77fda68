"""Errors a user can act on: the CLIs print them as one line and exit non-zero."""


class UserError(Exception):
  """Bad input, config or workdir; the message says what was expected where."""
