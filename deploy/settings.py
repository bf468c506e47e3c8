"""Settings of the stack's one-shot steps, read from their environment (pydantic-settings)."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_class: type[S], prog: str) -> S | None:
    """The settings, or None after one line per bad or missing value on stderr, naming the
    variable (`remote-init: error: DVC_REMOTE_URL: Field required`)."""
    try:
        return settings_class()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            print(f"{prog}: error: {where}: {error['msg']}", file=sys.stderr)
        return None
