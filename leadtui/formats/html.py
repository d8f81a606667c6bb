"""Render transactional-mail HTML to text lines, the way a mail client would show it.

Block elements, table cells and ``<br>`` end a line; inline elements do not. Everything
before ``<body``, comments, ``<script>``, ``<style>``, ``<title>`` and elements hidden with
``display:none`` (the preheader) are dropped, and entities are decoded once, at the end,
so ``&lt;b&gt;`` in a buyer's message stays the text ``<b>``. Families then match families
of layouts on these lines, never on markup.

Built from a few C-level regex passes: ``html.parser`` is several times slower on these
mails. Every pattern here scans in linear time, so hostile markup cannot make it hang.
"""

from __future__ import annotations

import html
import re

from leadtui.formats.text import clean_lines

# Block elements and table parts, as a trie: one alternation per first letter is about
# twice as fast as a flat list of 35 names in Python's regex engine.
_BLOCK_NAMES = (
    "a(?:ddress|rticle|side)|b(?:lockquote|r)|c(?:aption|enter)|d(?:[dlt]|iv)"
    "|f(?:i(?:eldset|g(?:caption|ure))|o(?:oter|rm))|h(?:[1-6r]|eader)|li|main|nav|ol|p(?:re)?"
    "|section|t(?:able|body|[dhr]|foot|head)|ul"
)
_FLAGS = re.IGNORECASE | re.ASCII
_BLOCK = re.compile(rf"</?(?:{_BLOCK_NAMES})(?=[\s/>])[^<>]*>", _FLAGS)
_TAG = re.compile(r"<[a-zA-Z/!?][^<>]*>")
_BODY = re.compile(r"<body(?=[\s>])", _FLAGS)
_RAW_TEXT_START = re.compile(r"<(script|style|title|textarea)(?=[\s/>])[^<>]*>", _FLAGS)
# ": none", led by a literal so the engine skips ahead at C speed (IGNORECASE would not);
# whether the property is "display" is checked on the few candidates.
_NONE_VALUE = re.compile(r":[ \t]*[nN][oO][nN][eE]\b")
_TAG_NAME = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)", _FLAGS)
_VOID = frozenset(
    {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


def _end_tag(name: str) -> re.Pattern[str]:
    """``</name>``, for the raw-text elements (``re`` keeps a bounded cache of these)."""
    return re.compile(rf"</{re.escape(name)}\s*>", _FLAGS)


def _same_tag(name: str) -> re.Pattern[str]:
    """Start and end tags of one element name, to find where a hidden element ends."""
    return re.compile(rf"<(/?){re.escape(name)}(?=[\s/>])[^<>]*>", _FLAGS)


def _drop_comments(markup: str) -> str:
    kept: list[str] = []
    position = 0
    while (start := markup.find("<!--", position)) != -1:
        kept.append(markup[position:start])
        end = markup.find("-->", start + 4)
        position = len(markup) if end == -1 else end + 3
    kept.append(markup[position:])
    return "".join(kept)


def _drop_raw_text(markup: str) -> str:
    kept: list[str] = []
    position = 0
    while match := _RAW_TEXT_START.search(markup, position):
        kept.append(markup[position : match.start()])
        end = _end_tag(match[1].lower()).search(markup, match.end())
        position = end.end() if end else len(markup)
    kept.append(markup[position:])
    return "".join(kept)


def _drop_hidden(markup: str) -> str:
    """Drop each element styled ``display:none``, with everything inside it."""
    kept: list[str] = []
    position = 0
    while style := _NONE_VALUE.search(markup, position):
        if (
            not markup[max(position, style.start() - 16) : style.start()]
            .rstrip()
            .lower()
            .endswith("display")
        ):
            kept.append(markup[position : style.end()])  # border:none and the like
            position = style.end()
            continue
        close = markup.find(">", style.end())
        if close == -1:
            break  # no tag can end after this point
        start = markup.rfind("<", position, style.start())
        tag = _TAG_NAME.match(markup, start) if start != -1 else None
        if tag is None or ">" in markup[start : style.start()]:
            kept.append(markup[position : style.end()])  # "display:none" in text, not a tag
            position = style.end()
            continue
        kept.append(markup[position:start])
        name = tag[1].lower()
        position = close + 1
        if name in _VOID or markup[close - 1] == "/":
            continue
        depth = 1
        for nested in _same_tag(name).finditer(markup, position):
            depth += -1 if nested[1] else 1
            if depth == 0:
                position = nested.end()
                break
        else:
            position = len(markup)  # never closed: hidden to the end, as a browser would
    kept.append(markup[position:])
    return "".join(kept)


def html_to_lines(markup: str) -> list[str]:
    """The visible text of an HTML document as cleaned, non-empty lines."""
    start = markup.find("<body")  # the usual spelling, found at C speed; then any case
    if start == -1 and (body := _BODY.search(markup)):
        start = body.start()
    if start > 0:
        markup = markup[start:]
    markup = markup.replace("\r", " ").replace("\n", " ")
    if "<!--" in markup:
        markup = _drop_comments(markup)
    if "<" in markup:
        markup = _drop_raw_text(markup)
        markup = _drop_hidden(markup)
        markup = _TAG.sub("", _BLOCK.sub("\n", markup))
    return clean_lines(html.unescape(markup) if "&" in markup else markup)


def text_to_lines(text: str) -> list[str]:
    """A text/plain body as cleaned, non-empty lines."""
    return clean_lines(text)
