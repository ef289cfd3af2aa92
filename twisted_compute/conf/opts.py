"""The option type: a name, a kind, a default, a help text and limits.

Values are parsed from the strings of an ini file by :meth:`Opt.parse`,
which raises :class:`ValueError` with a message fit for the operator.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _parse_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@attrs.frozen
class Opt:
    """One option: its name, type, default and limits."""

    name: str
    kind: str  # "str", "int", "float", "bool", "list", "port"
    default: Any
    help: str
    choices: Sequence[str] | None = None
    min: float | None = None
    max: float | None = None
    secret: bool = False

    def parse(self, raw: str) -> Any:
        value: Any
        if self.kind == "str":
            value = raw.strip()
        elif self.kind in ("int", "port"):
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not an integer") from None
            if self.kind == "port" and not 0 <= value <= 65535:
                raise ValueError(f"{value} is not a port number (0-65535)")
        elif self.kind == "float":
            try:
                value = float(raw.strip())
            except ValueError:
                raise ValueError(f"{raw!r} is not a number") from None
        elif self.kind == "bool":
            value = _parse_bool(raw)
        elif self.kind == "list":
            value = _parse_list(raw)
        else:  # pragma: no cover - programming error
            raise AssertionError(self.kind)
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item not in self.choices:
                    raise ValueError(
                        f"{item!r} is not one of {', '.join(self.choices)}")
        if self.min is not None and value < self.min:
            raise ValueError(f"{value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{value} is above the maximum {self.max}")
        return value


def str_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "str", default, help, **kw)


def int_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "int", default, help, **kw)


def float_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "float", default, help, **kw)


def bool_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "bool", default, help, **kw)


def list_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "list", default, help, **kw)


def port_opt(name, default, help, **kw) -> Opt:
    return Opt(name, "port", default, help, **kw)


#: What each option module's ``list_opts()`` returns: (section, options).
OptGroups = list[tuple[str, list[Opt]]]
