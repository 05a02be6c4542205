"""The one exception type ReaTimbre raises for problems a user can fix (bad input, unknown names)."""


class ReaTimbreError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""
