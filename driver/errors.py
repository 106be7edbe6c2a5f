"""The driver's one error type: every message is one line naming the file, port or option."""


class DriverError(RuntimeError):
    """Bad input, a package that does not fit, or an accelerator that did not answer."""
