"""Matchers with Alertmanager's meanings (pkg/labels: matcher.go, parse.go), table-driven.

The same table runs through PostgreSQL's ``labels_match`` in
tests/integration/test_alerting_matchers_sql.py: both evaluators must agree on every row.
"""

import pytest

from alert_delivery.alerting import matchers as m
from alert_delivery.errors import InvalidInput

# (matcher, labels, matches)
CASES: list[tuple[str, dict[str, str], bool]] = [
    ("foo=bar", {"foo": "bar"}, True),
    ("foo=bar", {"foo": "baz"}, False),
    ("foo=bar", {}, False),
    # A missing label is the empty string.
    ('foo=""', {}, True),
    ('foo=""', {"foo": ""}, True),
    ('foo=""', {"foo": "x"}, False),
    ("foo!=bar", {}, True),
    ("foo!=bar", {"foo": "baz"}, True),
    ("foo!=bar", {"foo": "bar"}, False),
    ('foo!=""', {}, False),
    ('foo!=""', {"foo": "x"}, True),
    # Regular expressions are anchored at both ends.
    ("foo=~bar.*", {"foo": "barbaz"}, True),
    ("foo=~bar.*", {"foo": "xbar"}, False),
    ("foo=~bar", {"foo": "barbar"}, False),
    ("foo=~a|b", {"foo": "a"}, True),
    ("foo=~a|b", {"foo": "ab"}, False),
    ("foo=~.*", {}, True),
    ("foo=~.+", {}, False),
    ('foo=~""', {}, True),
    ('foo=~""', {"foo": "x"}, False),
    ("foo!~bar", {}, True),
    ("foo!~bar", {"foo": "bar"}, False),
    ("foo!~bar", {"foo": "barx"}, True),
    ("foo!~.*", {"foo": "anything"}, False),
    ("severity=~WARNING|CRITICAL", {"severity": "CRITICAL"}, True),
    ("severity=~WARNING|CRITICAL", {"severity": "INFO"}, False),
    ("foo=~[a-c]{2,3}", {"foo": "abc"}, True),
    ("foo=~[a-c]{2,3}", {"foo": "abcd"}, False),
    ("foo=~(?:x|y)z", {"foo": "yz"}, True),
    ("foo=~a\\.b", {"foo": "a.b"}, True),
    ("foo=~a\\.b", {"foo": "axb"}, False),
    ("foo=~.*", {"foo": "line\nbreak"}, True),  # '.' matches a newline in both evaluators
    ('foo="with space"', {"foo": "with space"}, True),
    ('foo="say \\"hi\\""', {"foo": 'say "hi"'}, True),
    ("  foo  =  bar  ", {"foo": "bar"}, True),
    ("foo=é☃", {"foo": "é☃"}, True),
    ("foo=~[é☃]+", {"foo": "☃é"}, True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), CASES)
def test_matcher_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert m.parse(text).matches(labels) is expected


def test_all_matchers_must_hold() -> None:
    both = m.parse_all(["team=db", "severity!=INFO"])
    assert m.matches(both, {"team": "db", "severity": "CRITICAL"})
    assert not m.matches(both, {"team": "db", "severity": "INFO"})
    assert m.matches([], {"anything": "x"})


def test_round_trip_through_the_stored_form() -> None:
    parsed = m.parse_all(['a=~"x|y"', "b!=1", 'c="q\\"uote"'])
    assert m.from_json(m.to_json(parsed), where="t") == parsed
    assert [str(x) for x in parsed] == ["a=~x|y", "b!=1", 'c="q\\"uote"']
    assert m.parse_all([str(x) for x in parsed]) == parsed


def test_alertmanager_api_matcher_objects() -> None:
    items = [
        {"name": "a", "value": "x", "isRegex": False},
        {"name": "b", "value": "y.*", "isRegex": True},
        {"name": "c", "value": "z", "isRegex": False, "isEqual": False},
        {"name": "d", "value": "w+", "isRegex": True, "isEqual": False},
    ]
    assert [x.op for x in m.from_json(items, where="matchers")] == ["=", "=~", "!=", "!~"]


BAD: list[tuple[str, str]] = [
    ("", "empty matcher"),
    ("foo", "not a matcher"),
    ("1foo=bar", "not a matcher"),
    ("foo==bar", ""),  # '=bar' as a value is fine for '=', but '==' reads as '=' + '=bar'
    ('foo="unterminated', "unterminated quote"),
    ("foo=~(?i)bar", "only (?: ...) groups"),
    ("foo=~(?=x)x", "only (?: ...) groups"),
    ("foo=~(?P<n>x)", "only (?: ...) groups"),
    ("foo=~\\d+", "letter escapes"),
    ("foo=~\\w", "letter escapes"),
    ("foo=~(a)\\1", "backreferences"),
    ("foo=~[[:alpha:]]", "POSIX bracket classes"),
    ("foo=~a*+", "possessive"),
    ("foo=~a{,3}", "{,n}"),
    ("foo=~a{x}", "literal {"),
    ("foo=~(unclosed", "invalid regular expression"),
    ("foo=~" + "a" * 1100, "longer than 1024 bytes"),
]


@pytest.mark.parametrize(("text", "message"), [b for b in BAD if b[1]])
def test_refused_matchers_name_the_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        m.parse(text, where="match[0]")
    assert message in str(caught.value)
    assert caught.value.where == "match[0]"


def test_an_escaped_backslash_is_not_a_letter_escape() -> None:
    assert m.parse("path=~C:\\\\dir").matches({"path": "C:\\dir"})
    assert m.parse("path=~C:\\\\dir").value == "C:\\\\dir"


def test_shorthands_keep_todays_flags_working() -> None:
    assert m.shorthand(operation="merge", alert_type="ALL", severity="critical") == [
        m.Matcher("operation_type", "=", "merge"),
        m.Matcher("severity", "=", "CRITICAL"),
    ]
    with pytest.raises(InvalidInput, match="severity"):
        m.shorthand(severity="LOUD")
    with pytest.raises(InvalidInput, match="must not be empty"):
        m.shorthand(operation=" ")
