"""Just enough of Docker to test the image without a Docker engine: the Dockerfile's
instructions per stage, and which files ``.dockerignore`` lets into the build context."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    out: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            out.append(Stage(base.strip(), name.strip() or None))
        else:
            assert out, f"{keyword} before FROM"
            out[-1].instructions.append((keyword, args))
    return out


def exec_form(args: str) -> list[str]:
    """``["a", "b"]`` (JSON) as a list; anything else is shell form, run by ``/bin/sh -c``."""
    if args.startswith("["):
        return list(json.loads(args))
    return ["/bin/sh", "-c", args]


def env_pairs(args: str) -> dict[str, str]:
    """``ENV A=1 B=2`` (the key=value form; values without spaces)."""
    out = {}
    for pair in args.split():
        key, _, value = pair.partition("=")
        out[key] = value
    return out


def _regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@dataclass
class DockerIgnore:
    """``.dockerignore`` rules: the last matching one wins; a rule matching a directory covers what is in it."""

    rules: list[tuple[bool, re.Pattern[str], str]]  # (include, regex, pattern as written)

    @classmethod
    def parse(cls, text: str) -> "DockerIgnore":
        rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((include, _regex(pattern), pattern))
        return cls(rules)

    def included(self, path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = True
        for include, regex, _ in self.rules:
            if any(regex.fullmatch(p) for p in prefixes):
                result = include
        return result

    def context(self, root: Path) -> list[str]:
        """Every file the build context holds (paths relative to ``root``)."""
        reincluded = [p for inc, _, p in self.rules if inc]
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            rel = "" if rel == "." else rel + "/"
            dirnames[:] = [d for d in dirnames
                           if self.included(rel + d) or any(p.startswith(rel + d + "/") for p in reincluded)]
            out.extend(rel + f for f in filenames if self.included(rel + f))
        return sorted(out)
