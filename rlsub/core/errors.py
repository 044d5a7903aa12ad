"""User-facing errors: one clear line, non-zero exit, never a traceback."""


class RlsubError(Exception):
    """A mistake in user input (config, flag, file). The CLI prints it as one line."""


class ConfigError(RlsubError):
    """A bad config key or value."""
