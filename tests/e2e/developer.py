"""What a developer does on the host: clone the stack's Git repository over 127.0.0.1,
commit, push; credentials through the bundle's own helper (scripts/git-credential-stack,
which reads the stack's .env), never in a URL."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

IDENTITY = ("-c", "user.name=E2E Developer", "-c", "user.email=e2e@mltoy.invalid")


@dataclass
class Developer:
    path: Path
    url: str
    helper: str  # a git credential.helper value; "" = none (anonymous)

    @classmethod
    def clone(cls, stack_dir: Path, git_port: str, path: Path) -> Developer:
        url = f"http://127.0.0.1:{git_port}/mltoy.git"
        helper = f"!python3 '{stack_dir / 'scripts/git-credential-stack'}'"
        developer = cls(path.parent, url, helper)
        developer.git("clone", "--quiet", url, str(path))
        developer.path = path
        return developer

    def git(
        self, *args: str, check: bool = True, helper: str | None = None, env: dict | None = None
    ) -> subprocess.CompletedProcess[str]:
        helper = self.helper if helper is None else helper
        command = ["git", "-c", "credential.helper=", *IDENTITY]
        if helper:
            command += ["-c", f"credential.helper={helper}"]
        result = subprocess.run(
            [*command, *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref).stdout.strip()

    def commit(self, message: str, **files: str) -> str:
        """Write files (relative path -> text), commit them; return the new SHA."""
        for relpath, text in files.items():
            (self.path / relpath).write_text(text)
        if files:
            self.git("add", *files)
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def set_param(self, dotted: str, value: object) -> str:
        """params.yaml with one value changed (the file's comments are lost, as with any
        tool that rewrites YAML)."""
        params = yaml.safe_load((self.path / "params.yaml").read_text())
        section, key = dotted.split(".")
        params[section][key] = value
        return yaml.safe_dump(params, sort_keys=False)

    def push(self, *refspecs: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.git("push", "origin", *refspecs, check=check)

    def remote_refs(self) -> dict[str, str]:
        out = self.git("ls-remote", "origin").stdout
        return {ref: sha for sha, ref in (line.split("\t") for line in out.splitlines())}
