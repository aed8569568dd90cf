"""The allocation package's one user-facing error."""
from scaling.io.types import ScalingDataError


class AllocationError(ScalingDataError):
  """Bad input to an allocation question; the message is one actionable line.

  A ScalingDataError, so ``lm.cli`` prints it as one ``error:`` line (exit 2).
  """
