"""Escaping and truncation of hostile alert text, shared by every channel.

Every alert field a channel shows goes through one of these (tests/unit/test_channels_escape.py
and tests/unit/test_channels_formats.py hold them to it). The SQL helpers of the same names in
sql/migrations/0003_alerting.sql were the enqueue-time formatters' and are not used for bodies.
"""

import re

# Control characters except tab and newline, plus bidi overrides (spoofed text direction).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
_MARKDOWN = re.compile(r"([\\`*_~\[\]()#<>|!{}])")
_SAFE_URL = re.compile(r"https://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+")
ZERO_WIDTH_SPACE = "\u200b"
ELLIPSIS = "…"


def strip_controls(text: str | None) -> str:
    return _CONTROLS.sub("", text or "")


def clean_text(text: str | None, max_len: int) -> str:
    """Controls removed; longer than ``max_len`` characters -> cut, ending in an ellipsis."""
    cleaned = strip_controls(text)
    return cleaned[: max_len - 1] + ELLIPSIS if len(cleaned) > max_len else cleaned


def slack_text(text: str | None, max_len: int) -> str:
    """Slack's three escapes (so ``<!channel>`` and ``<url|x>`` stay text), cut between entities."""
    escaped = strip_controls(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) > max_len:
        return _PARTIAL_ENTITY.sub("", escaped[: max_len - 1]) + ELLIPSIS
    return escaped


def mattermost_plain(text: str | None, max_len: int) -> str:
    """Breaks @channel / @all / @here mentions; for fields Mattermost does not render."""
    return clean_text(text, max_len // 2).replace("@", "@" + ZERO_WIDTH_SPACE)


def mattermost_text(text: str | None, max_len: int) -> str:
    """Markdown escaped with backslashes, mentions broken; at most ``max_len`` characters."""
    escaped = _MARKDOWN.sub(r"\\\1", clean_text(text, max_len // 2))
    return escaped.replace("@", "@" + ZERO_WIDTH_SPACE)


def html_text(text: str | None, max_len: int) -> str:
    return (
        clean_text(text, max_len)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def subject_text(text: str | None, max_len: int) -> str:
    """One line, so a hostile title cannot add mail headers."""
    return clean_text(re.sub(r"[\t\n]+", " ", strip_controls(text)), max_len)


def safe_url(url: str | None) -> str | None:
    """An https URL without spaces, quotes or angle brackets, else None."""
    if url is None or len(url) > 2000 or not _SAFE_URL.fullmatch(url):
        return None
    return url
