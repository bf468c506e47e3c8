#!/usr/bin/env python3
"""One setting of the stack as compose sees it: the environment's, else .env's, else a default.

    python3 scripts/dotenv_value.py GIT_PORT 8418

Standard library only (it runs before the venv); `import dotenv_value` from scripts/ too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parents[1] / ".env"


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines skipped; optional quotes removed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def value(key: str, default: str | None = None, path: Path = ENV_FILE) -> str | None:
    return os.environ.get(key) or read_env_file(path).get(key) or default


if __name__ == "__main__":
    found = value(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    if found is None:
        sys.exit(f"{sys.argv[1]} is not set (environment or .env)")
    print(found)
