"""The real Comunica SPARQL engine (npm ``@comunica/query-sparql``) run as a CLI against a live server.

``comunica-sparql <source> -q <query> -t application/json --logLevel info`` prints the
bindings as a JSON array on stdout and its log (each request, how each source was
identified) on stderr. Terms come back as strings in Comunica's own notation: an IRI
bare, a literal as ``"lex"``, ``"lex"@lang`` or ``"lex"^^<datatype IRI without brackets>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
import rdflib

from tests.support.live import CLIENTS_DIR, require_npm_cli

COMUNICA_CLI = CLIENTS_DIR / "node_modules" / "@comunica" / "query-sparql" / "bin" / "query.js"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUESTING = re.compile(r"INFO: Requesting (\S+)")


def require_comunica() -> list[str]:
    return require_npm_cli("Comunica", COMUNICA_CLI)


def term(text: str) -> rdflib.term.Node:
    """A term in Comunica's string notation as an rdflib term (so literals compare by value and datatype)."""
    if text.startswith('"'):
        close = text.rindex('"')  # a language tag or datatype IRI never holds a quote
        lex, rest = text[1:close], text[close + 1:]
        if rest.startswith("@"):
            return rdflib.Literal(lex, lang=rest[1:])
        if rest.startswith("^^"):
            return rdflib.Literal(lex, datatype=rdflib.URIRef(rest[2:]))
        assert rest == "", f"not a literal in Comunica's notation: {text!r}"
        return rdflib.Literal(lex)
    if text.startswith("_:"):
        return rdflib.BNode(text[2:])
    assert ":" in text and " " not in text, f"not an IRI: {text!r}"
    return rdflib.URIRef(text)


def value(text: str) -> Any:
    """The Python value of a term: an IRI as str, a literal as int / float / str by its datatype."""
    node = term(text)
    return str(node) if not isinstance(node, rdflib.Literal) else node.toPython()


@dataclass
class ComunicaRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str  # without colour codes
    seconds: float

    def describe(self) -> str:
        return f"comunica-sparql {' '.join(self.args)!s:.300} (exit {self.returncode}); stderr tail:\n{self.stderr[-3000:]}"

    def bindings(self) -> list[dict[str, rdflib.term.Node]]:
        assert self.returncode == 0, self.describe()
        try:
            rows = json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"Comunica printed no JSON array ({exc}); stdout head:\n{self.stdout[:1500]}\n{self.describe()}")
        assert isinstance(rows, list), self.stdout[:500]
        return [{k: term(v) for k, v in row.items()} for row in rows]

    def values(self, *variables: str) -> list[tuple[Any, ...]]:
        """One tuple of Python values per result row, in the order of ``variables`` (each must be bound)."""
        out = []
        for row in self.bindings():
            missing = [v for v in variables if v not in row]
            assert not missing, f"unbound {missing} in {row}"
            out.append(tuple(str(row[v]) if not isinstance(row[v], rdflib.Literal) else row[v].toPython() for v in variables))
        return out

    def requested(self) -> list[str]:
        """The URLs Comunica fetched, in order (needs ``--logLevel info``)."""
        return _REQUESTING.findall(self.stderr)

    def identified(self, url: str) -> str | None:
        """How Comunica identified the source ``url`` (``qpf``, ``file``, ...), from its info log."""
        m = re.search(r"Identified as (\S+) source: " + re.escape(url) + r"(?:\s|$)", self.stderr)
        return m.group(1) if m else None


async def run_comunica(source: str | list[str], query: str, *args: str, timeout: float = 60.0) -> ComunicaRun:
    """Run one query (over one source, or federated over several) without blocking the loop that
    serves it; kill the CLI after ``timeout``."""
    command = require_comunica()
    sources = [source] if isinstance(source, str) else list(source)
    argv = [*sources, "-q", query, "-t", "application/json", "--logLevel", "info", *args]
    loop = asyncio.get_running_loop()
    started = loop.time()
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    proc = await asyncio.create_subprocess_exec(
        *command, *argv,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(CLIENTS_DIR), env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        stdout, stderr = await proc.communicate()
        pytest.fail(
            f"comunica-sparql {source} did not finish within {timeout:.0f}s; "
            f"stderr tail:\n{_ANSI.sub('', stderr.decode(errors='replace'))[-2000:]}"
        )
    finally:
        if proc.returncode is None:  # cancelled: never leave the child behind
            proc.kill()
            await proc.wait()
    return ComunicaRun(argv, proc.returncode, stdout.decode(), _ANSI.sub("", stderr.decode(errors="replace")),
                       loop.time() - started)
