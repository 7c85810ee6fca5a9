"""Label matchers with Alertmanager's meanings: ``=``, ``!=``, ``=~``, ``!~``.

A missing label matches as the empty string (``team=""`` selects alerts without ``team``).
Regular expressions are anchored at both ends. They are evaluated by PostgreSQL
(``alert_delivery.labels_match``) and by Python (:func:`matches`, for previews and tests), so
only the constructs both read the same way are accepted: escapes of punctuation, classes,
groups, alternation and bounded repetition. Refused, with the reason: backreferences, ``(?``
groups (lookaround, flags, named groups) other than ``(?:``, letter escapes such as ``\\d`` or
``\\w`` (Unicode-dependent in Python, locale-dependent in PostgreSQL), POSIX classes
``[[:alpha:]]``, possessive quantifiers and ``{,n}``. ``.`` matches a newline in both.

Stored as JSON arrays ``[name, op, value]`` (routing rules, silences, inhibition rules,
escalation routes).
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alert_delivery.alerting.labels import LABEL_NAME, MAX_VALUE_BYTES, SEVERITIES
from alert_delivery.errors import InvalidInput

OPS = ("=~", "!~", "!=", "=")
_SYNTAX = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
_SHORTHAND = {"operation": "operation_type", "alert_type": "alert_type", "severity": "severity"}


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"

    def as_json(self) -> list[str]:
        return [self.name, self.op, self.value]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _compiled(self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found


def _quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_.:/|*+?()\[\]^$-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _cache.get(pattern)
    if found is None:
        found = re.compile(pattern, re.DOTALL)
        _cache[pattern] = found
    return found


_REFUSED = (
    (re.compile(r"\\[0-9]"), "backreferences are not supported"),
    (
        re.compile(r"\\[A-Za-z]"),
        "letter escapes (\\d, \\w, \\s, \\b, ...) differ between "
        "PostgreSQL and Python: write the class out, e.g. [0-9]",
    ),
    (
        re.compile(r"\(\?(?!:)"),
        "only (?: ...) groups are supported (no lookaround, flags or named groups)",
    ),
    (re.compile(r"\[[:=.]"), "POSIX bracket classes ([[:alpha:]]) are not supported"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers are not supported"),
    (re.compile(r"\{,"), "{,n} is not supported: write {0,n}"),
)


def check_regex(pattern: str, *, where: str) -> str:
    """The pattern if PostgreSQL and Python agree on it, else ``InvalidInput`` saying why."""
    if len(pattern.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"regular expression longer than {MAX_VALUE_BYTES} bytes", where=where)
    # Escaped backslashes first, so "\\\\d" (a literal backslash then d) is not a letter escape.
    plain = pattern.replace("\\\\", "")
    for rule, reason in _REFUSED:
        if rule.search(plain):
            raise InvalidInput(f"{reason}: {pattern[:80]!r}", where=where)
    for i, ch in enumerate(plain):
        # A brace that does not start a bound is a literal to Python but an error to PostgreSQL.
        bound = re.match(r"\{[0-9]+(,[0-9]*)?\}", plain[i:])
        if ch == "{" and (i == 0 or plain[i - 1] != "\\") and not bound:
            raise InvalidInput(f"a literal {{ must be escaped: {pattern[:80]!r}", where=where)
    try:
        _compiled(pattern)
    except re.error as exc:
        raise InvalidInput(
            f"invalid regular expression {pattern[:80]!r}: {exc}", where=where
        ) from None
    return pattern


def _unquote(value: str, *, where: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out: list[str] = []
        i = 1
        while i < len(value) - 1:
            ch = value[i]
            if ch == "\\" and i + 1 < len(value) - 1:
                out.append(value[i + 1])
                i += 2
                continue
            if ch == '"':
                raise InvalidInput(f"unescaped quote in {value[:80]!r}", where=where)
            out.append(ch)
            i += 1
        return "".join(out)
    if value.startswith('"'):
        raise InvalidInput(f"unterminated quote in {value[:80]!r}", where=where)
    return value


def make(name: str, op: str, value: str, *, where: str) -> Matcher:
    if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
        raise InvalidInput(f"invalid label name {str(name)[:80]!r}", where=where)
    if op not in OPS:
        raise InvalidInput(f"unknown operator {str(op)[:10]!r} (one of = != =~ !~)", where=where)
    if not isinstance(value, str):
        raise InvalidInput("matcher value must be a string", where=where)
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"value longer than {MAX_VALUE_BYTES} bytes", where=where)
    if op in ("=~", "!~"):
        check_regex(value, where=where)
    return Matcher(name, op, value)


def parse(text: str, *, where: str = "match") -> Matcher:
    """``severity=~"WARNING|CRITICAL"``, ``team!=db``, ``env="prod"`` (value quoted or bare)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(
            "empty matcher (expected name=value, name!=value, name=~re, name!~re)", where=where
        )
    found = _SYNTAX.fullmatch(text)
    if not found:
        raise InvalidInput(
            f"not a matcher: {text[:80]!r} (expected name=value, name!=value, name=~re, name!~re)",
            where=where,
        )
    name, op, value = found.groups()
    return make(name, op, _unquote(value, where=where), where=where)


def parse_all(texts: Iterable[str], *, where: str = "match") -> list[Matcher]:
    return [parse(t, where=f"{where}[{i}]") for i, t in enumerate(texts)]


def from_json(items: Any, *, where: str) -> list[Matcher]:
    """Matchers from their stored or API form: ``[[name, op, value], ...]`` or objects with
    ``name``/``value``/``isRegex``/``isEqual`` (Alertmanager's API v2)."""
    if not isinstance(items, list):
        raise InvalidInput("must be a list of matchers", where=where)
    out: list[Matcher] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if isinstance(item, str):
            out.append(parse(item, where=at))
        elif isinstance(item, list | tuple) and len(item) == 3:
            out.append(make(item[0], item[1], item[2], where=at))
        elif isinstance(item, Mapping) and "name" in item and "value" in item:
            regex, equal = bool(item.get("isRegex")), item.get("isEqual", True) is not False
            op = ("=~" if regex else "=") if equal else ("!~" if regex else "!=")
            out.append(make(item["name"], op, item["value"], where=at))
        else:
            raise InvalidInput("a matcher is [name, op, value] or 'name=value'", where=at)
    return out


def to_json(matchers: Sequence[Matcher]) -> list[list[str]]:
    return [m.as_json() for m in matchers]


def matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def shorthand(**fields: str | None) -> list[Matcher]:
    """Today's flags (``--operation X``, ``--alert-type Y``, ``--severity Z``; ``ALL`` or empty
    matches everything) as equality matchers."""
    out: list[Matcher] = []
    for flag, value in fields.items():
        if value is None:
            continue
        text = value.strip()
        if not text:
            raise InvalidInput("must not be empty (use ALL to match everything)", where=flag)
        if text.upper() == "ALL":
            continue
        label = _SHORTHAND.get(flag, flag)
        if label == "severity":
            text = text.upper()
            if text not in SEVERITIES:
                raise InvalidInput(
                    f"must be one of ALL, {', '.join(SEVERITIES)}, not {value!r}", where=flag
                )
        out.append(make(label, "=", text, where=flag))
    return out


def describe(matchers: Sequence[Matcher]) -> str:
    return ", ".join(str(m) for m in matchers) if matchers else "(everything)"
