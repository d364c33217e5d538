"""Every config setting can come from an environment variable (containers, compose files).

``LDF_<SECTION>__<KEY>`` sets ``[section] key``; a double underscore steps one level down:

- ``LDF_SERVER__PORT=9000``, ``LDF_SERVER__BASE_URL=https://data.stad.gent``
- ``LDF_CATALOG__PUBLISHER__NAME=Stad Gent``, ``LDF_CATALOG__TITLE__NL=Open data``
- entries of ``[[datasets]]``, ``[[feeds]]`` and ``[[push]]`` are addressed by their id, in upper
  case with ``-`` written ``_``: ``LDF_FEEDS__GENT_REPLAY__INTERVAL=1m``,
  ``LDF_FEEDS__SIMULATOR__OPTIONS__BACKFILL=2h``, ``LDF_DATASETS__PARKING__RETENTION=30d``.
  An entry must exist in the file: the environment changes settings, it does not add feeds.

Values are read as TOML values where they parse as one (``8080``, ``true``, ``["a", "b"]``,
``{ name = "x", iri = "https://…" }``), otherwise as text (``30s``, ``https://…``); a setting
whose type is text always takes the value verbatim. An empty value counts as unset.

The short names ``LDF_HOST``, ``LDF_PORT``, ``LDF_BASE_URL``, ``LDF_DATA_DIR`` and
``LDF_LOG_LEVEL`` still work (the long form wins when both are set). Overrides are applied to
the parsed file before validation, so a bad value is reported like a bad key in the file,
naming the variable it came from. Stdlib only at import time: the healthcheck uses it too.
"""

from __future__ import annotations

import copy
import re
import tomllib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Mapping, Sequence, Union, get_args, get_origin

PREFIX = "LDF_"
SHORT_NAMES = {"HOST": "host", "PORT": "port", "BASE_URL": "base_url", "DATA_DIR": "data_dir", "LOG_LEVEL": "log_level"}
TABLES = ("server", "catalog")
ARRAYS = {"datasets": "dataset", "feeds": "feed", "push": "push source"}
_NAME = re.compile(r"^[A-Z0-9_]+$")


class OverrideError(ValueError):
    """An environment variable that cannot be applied (unknown section or entry, bad name)."""


@dataclass(frozen=True)
class Override:
    """One environment variable, split into the path of the setting it sets."""

    name: str
    parts: tuple[str, ...]  # upper case, as written: ("FEEDS", "GENT_REPLAY", "INTERVAL")
    value: str


def normalise(key: str) -> str:
    """How a key or id is written in a variable name: upper case, ``-`` as ``_``."""
    return key.upper().replace("-", "_")


def overrides_from(env: Mapping[str, str]) -> list[Override]:
    """The config overrides among ``env``, in the order they apply (short names, then shallow first)."""
    out = []
    for name, value in env.items():
        if not name.startswith(PREFIX) or value == "":
            continue
        rest = name[len(PREFIX):]
        if "__" in rest:
            parts = tuple(rest.split("__"))
            if not _NAME.match(rest) or any(p == "" or p.startswith("_") or p.endswith("_") for p in parts):
                raise OverrideError(
                    f"{name}: not a setting name; write LDF_<SECTION>__<KEY> in upper case, "
                    "one double underscore between levels (e.g. LDF_SERVER__PORT)"
                )
            out.append(Override(name, parts, value))
        elif rest in SHORT_NAMES:
            out.append(Override(name, ("SERVER", rest), value))
    return sorted(out, key=lambda o: ("__" in o.name, len(o.parts), o.name))


def parse_value(text: str, *, verbatim: bool = False) -> Any:
    """A TOML value when ``text`` is one (numbers, booleans, arrays, inline tables), else the text."""
    if verbatim or "\n" in text or "\r" in text:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _match(table: Mapping[str, Any], part: str) -> str:
    """The existing key ``part`` names (``TITLE`` → ``title``, ``NL`` → ``nl``), else it in lower case."""
    return next((k for k in table if normalise(str(k)) == part), part.lower())


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def wants_text(model: Any, path: Sequence[str | None]) -> bool:
    """Whether the setting at ``path`` in a pydantic ``model`` is text (then taken verbatim).

    ``None`` in ``path`` steps into a list entry. Unknown paths are not text: the value is
    parsed, and validation reports the key.
    """
    annotation = model
    for part in path:
        annotation = _unwrap(annotation)
        fields = getattr(annotation, "model_fields", None)
        if isinstance(fields, dict):
            field = fields.get(part) if part is not None else None
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is list and part is None:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict and part is not None:
            annotation = get_args(annotation)[1]
        else:
            return False
    annotation = _unwrap(annotation)
    if annotation is str:
        return True
    return get_origin(annotation) is Literal and all(isinstance(a, str) for a in get_args(annotation))


def apply_environment(
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    model: Any = None,
    options_model: Callable[[str], Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """``raw`` (a parsed config file) with the environment's overrides applied.

    Returns the new dict (``raw`` is not changed) and, for every location set, the variable
    that set it (``{"feeds[0].interval": "LDF_FEEDS__SIMULATOR__INTERVAL"}``), so validation
    errors can say where a value came from. ``model`` (the root pydantic model) and
    ``options_model`` (adapter name → its options model) tell which settings are text.
    """
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    origins: dict[str, str] = {}
    for o in overrides_from(env):
        section = o.parts[0].lower()
        if section in TABLES:
            table = out.get(section)
            if not isinstance(table, dict):
                table = out[section] = {}
            keys, loc, type_path = o.parts[1:], section, [section]
            entry: dict[str, Any] = {}
        elif section in ARRAYS:
            if len(o.parts) < 3:
                raise OverrideError(f"{o.name}: name an entry by its id and a key, e.g. LDF_{o.parts[0]}__<ID>__<KEY>")
            entries = out.get(section) or []
            ids = [str(e.get("id", "")) for e in entries if isinstance(e, dict)]
            index = next((i for i, e in enumerate(entries) if isinstance(e, dict) and normalise(str(e.get("id", ""))) == o.parts[1]), None)
            if index is None:
                raise OverrideError(
                    f"{o.name}: the config file has no {ARRAYS[section]} with id {o.parts[1].lower().replace('_', '-')!r} "
                    f"(known: {', '.join(ids) or 'none'}); the environment changes entries, it cannot add them"
                )
            table = entry = entries[index]
            keys, loc, type_path = o.parts[2:], f"{section}[{index}]", [section, None]
        else:
            raise OverrideError(
                f"{o.name}: no section {section!r} in the config (known: {', '.join((*TABLES, *ARRAYS))})"
            )
        for part in keys[:-1]:
            key = _match(table, part)
            child = table.get(key)
            if child is None:
                child = table[key] = {}
            elif not isinstance(child, dict):
                raise OverrideError(f"{o.name}: {loc}.{key} is a value, not a table with keys")
            table, loc = child, f"{loc}.{key}"
            type_path.append(key)
        key = _match(table, keys[-1])
        type_path.append(key)
        verbatim = False
        if section == "feeds" and len(type_path) > 3 and type_path[2] == "options":
            options = options_model(str(entry.get("adapter", ""))) if options_model else None
            verbatim = options is not None and wants_text(options, type_path[3:])
        elif model is not None:
            verbatim = wants_text(model, type_path)
        table[key] = parse_value(o.value, verbatim=verbatim)
        origins[f"{loc}.{key}"] = o.name
    return out, origins


def annotate(line: str, origins: Mapping[str, str]) -> str:
    """``"feeds[0].interval: bad"`` → ``"... (from LDF_FEEDS__SIMULATOR__INTERVAL)"`` when the env set it."""
    where = line.split(": ", 1)[0]
    for loc, name in sorted(origins.items(), key=lambda item: -len(item[0])):
        if where == loc or where.startswith((loc + ".", loc + "[")):
            return f"{line} (from environment variable {name})"
    return line
