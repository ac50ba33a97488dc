"""User-facing errors: the command line prints them as one line and exits with status 2."""

__all__ = ["GankitError"]


class GankitError(Exception):
    """A problem with the user's input (config, file, argument), not a bug in gankit.

    ``str(error)`` names the field or file, what was given and what is allowed. Several
    problems found at once are joined by newlines, one line each.
    """
