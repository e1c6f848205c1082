"""The one exception type that reaches the user as a single error line (CLI exit code 2)."""


class LungsegError(Exception):
    """Bad input or an impossible request; the message is shown to the user as is."""


class NotHUError(LungsegError):
    """A model that needs Hounsfield units was given image-mode (non-HU) input."""
