"""Hostile text is escaped or truncated, never passed through."""

import pytest

from alert_delivery.channels.escape import (
    clean_text,
    html_text,
    mattermost_plain,
    mattermost_text,
    safe_url,
    slack_text,
    strip_controls,
    subject_text,
)


def test_control_characters_and_bidi_overrides_are_removed_but_newlines_stay() -> None:
    assert strip_controls("a\x00b\x07c\x1b[31md\x7fe\u202eevil\u2066x\ty\nz\r") == (
        "abc[31mdeevilx\ty\nz"
    )


@pytest.mark.parametrize("size", [10, 1024, 3000])
def test_clean_text_truncates_to_the_limit_with_an_ellipsis(size: int) -> None:
    out = clean_text("y" * 100_000, size)
    assert len(out) == size and out.endswith("…")
    assert clean_text("short", size) == "short"


def test_slack_escapes_its_three_characters_so_mentions_and_links_stay_text() -> None:
    assert slack_text("<!channel> <!here> <@U123> <https://x|y> & co", 500) == (
        "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://x|y&gt; &amp; co"
    )


@pytest.mark.parametrize("cut", range(2, 12))
def test_slack_truncation_never_leaves_half_an_entity(cut: int) -> None:
    out = slack_text("a" + "&<" * 50, cut)
    assert len(out) <= cut and out.endswith("…")
    body = out[:-1]
    assert body.count("&") == body.count(";")  # every entity complete


def test_mattermost_escapes_markdown_and_breaks_mentions() -> None:
    out = mattermost_text("@channel @all *bold* [x](https://evil) `c` # h", 500)
    assert "@channel" not in out and "@all" not in out
    assert out.startswith("@\u200bchannel @\u200ball \\*bold\\* \\[x\\]\\(https://evil\\)")
    assert mattermost_plain("@here <b>", 100) == "@\u200bhere <b>"
    assert len(mattermost_text("*" * 10_000, 4000)) <= 4000


def test_html_escapes_markup_and_quotes() -> None:
    assert html_text("<script>alert('x')</script> & \"q\"", 100) == (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;"
    )


def test_subject_is_one_line_so_no_header_injection() -> None:
    subject = subject_text("hi\r\nBcc: victim@example.com\n\tmore", 200)
    assert "\n" not in subject and "\r" not in subject
    assert subject == "hi Bcc: victim@example.com more"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://runbooks.example/anomalies/p99?x=1#top", True),
        ("http://runbooks.example/", False),
        ("javascript:alert(1)", False),
        ('https://x/"><script>', False),
        ("https://x/ spaced", False),
        ("https://x/" + "a" * 2000, False),
        (None, False),
    ],
)
def test_only_plain_https_urls_become_links(url: str | None, ok: bool) -> None:
    assert (safe_url(url) == url) is ok if url else safe_url(url) is None
