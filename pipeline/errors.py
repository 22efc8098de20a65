"""One root error for the package; subpackages derive from it."""


class NetreadyError(Exception):
    """Base class of every error netready raises on purpose."""


class ConfigError(NetreadyError):
    """Configuration is invalid or inconsistent."""


class DecodeError(NetreadyError):
    """Input could not be decoded at all (a whole file or message, not one record)."""


class KernelMissingError(NetreadyError):
    """The compiled aggregation kernel is not built; netready refuses to run without it."""


class SinkError(NetreadyError):
    """A result sink failed; `retryable` says whether backing off may help."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable
