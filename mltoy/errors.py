"""Errors caused by user input, kept apart from bugs so they can be reported in one line."""

# The exit status of `python -m mltoy.cli` on bad input (argparse's usage-error status).
# Orchestrators rely on it: a stage that exits with it is not retried (flows/retry.py).
EXIT_BAD_INPUT = 2


class MltoyInputError(Exception):
    """Bad user input: the CLI prints the message as one line and exits EXIT_BAD_INPUT."""

    def __init__(self, message: str) -> None:
        # Wrapped library messages may span lines; one line keeps logs and stderr greppable.
        super().__init__(" ".join(line.strip() for line in message.splitlines() if line.strip()))


class ParamsError(MltoyInputError):
    """The params are missing, malformed or out of range."""


class DataError(MltoyInputError):
    """A data or model file is missing, malformed or unusable by the stage."""
