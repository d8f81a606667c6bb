"""Render transactional-mail HTML to text lines, the way a mail client would show it.

Block elements, table cells and ``<br>`` end a line; inline elements do not. Comments,
``<script>``, ``<style>``, ``<title>`` and elements hidden with a ``display:none`` style
(the preheader) are dropped, and entities are decoded once, at the end, so ``&lt;b&gt;``
in a buyer's message stays the text ``<b>``. Text outside ``<body>`` is shown, as browsers
show it. Families then match families of layouts on these lines, never on markup.

Built from a few C-level regex passes: ``html.parser`` is several times slower on these
mails. Every pattern here scans in linear time (the tag patterns are possessive, and quoted
attribute values are read as one piece, so a ``>`` inside one does not end the tag), and
the one Python loop, over the tags inside a hidden element, visits each tag once.
"""

from __future__ import annotations

import html
import re

from leadtui.formats.text import clean_lines

# Block elements and table parts, as a trie: one alternation per first letter is about
# twice as fast as a flat list of 35 names in Python's regex engine.
_BLOCK_NAMES = (
    "a(?:ddress|rticle|side)|b(?:lockquote|r)|c(?:aption|enter)|d(?:[dlt]|etails|i(?:alog|r|v))"
    "|f(?:i(?:eldset|g(?:caption|ure))|o(?:oter|rm))|h(?:[1-6r]|eader|group)|l(?:egend|i)"
    "|m(?:ain|enu)|nav|o(?:l|pt(?:group|ion))|p(?:re)?|s(?:ection|ummary)"
    "|t(?:able|body|[dhr]|foot|head)|ul"
)
_FLAGS = re.IGNORECASE | re.ASCII
# What follows a tag name up to its ">": a quoted attribute value (after "=") is one piece,
# so a ">" inside it stays in the tag; a "<" outside quotes means this was no tag. An
# unclosed quote is read as plain characters. Possessive throughout: no backtracking.
_ATTRS = r"""(?:[^<>="']++|=[ \t\n\r\f]*+(?:"[^"]*+"|'[^']*+')|[="'])*+"""
_BLOCK = re.compile(rf"</?(?:{_BLOCK_NAMES})(?=[\s/>]){_ATTRS}>", _FLAGS)
_TAG = re.compile(rf"<[a-zA-Z/!?]{_ATTRS}>")
_ANY_TAG = re.compile(rf"<(/?)([a-zA-Z][a-zA-Z0-9:-]*+)({_ATTRS})>")
_START_TAG = re.compile(rf"<([a-zA-Z][a-zA-Z0-9:-]*+)({_ATTRS})>")
_TAG_OPENING = re.compile(r"<[a-zA-Z/!?]")
_RAW_TEXT_START = re.compile(r"<(script|style|title|textarea)(?=[\s/>])[^<>]*>", _FLAGS)
# ": none", led by a literal so the engine skips ahead at C speed (IGNORECASE would not);
# whether it is the "display" property of a style attribute is checked on the few hits.
_NONE_VALUE = re.compile(r":[ \t]*[nN][oO][nN][eE]\b")
_ATTRIBUTE = re.compile(
    r"""([^\s"'<>/=][^\s"'<>/=]*+)(?:\s*+=\s*+(?:"([^"]*+)"|'([^']*+)'|([^\s>]*+)))?"""
)
_DISPLAY_NONE = re.compile(r"(?:^|[;\s])display\s*:\s*none\b", _FLAGS)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
# Elements whose end tag is optional, and the start tags that end them implicitly (the
# HTML parsing rules, simplified): a "<p>" ends at the next block, a "<td>" at the next
# cell or row, an "<li>" at the next item.
_P_CLOSERS = frozenset(
    {"address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div"}
    | {"dl", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "main", "menu", "nav", "ol", "p", "pre"}
    | {"section", "summary", "table", "ul"}
)
_CELL_CLOSERS = frozenset({"td", "th", "tr", "tbody", "thead", "tfoot"})
_IMPLIED_END = {
    "p": _P_CLOSERS,
    "li": frozenset({"li"}),
    "dd": frozenset({"dd", "dt"}),
    "dt": frozenset({"dd", "dt"}),
    "td": _CELL_CLOSERS,
    "th": _CELL_CLOSERS,
    "tr": frozenset({"tr", "tbody", "thead", "tfoot"}),
    "tbody": frozenset({"tbody", "thead", "tfoot"}),
    "thead": frozenset({"tbody", "thead", "tfoot"}),
    "tfoot": frozenset({"tbody", "thead", "tfoot"}),
    "option": frozenset({"option", "optgroup"}),
    "optgroup": frozenset({"optgroup"}),
}
# An implied end does not reach past these (an "<li>" inside a nested list ends nothing
# outside it).
_SCOPE = frozenset({"table", "ul", "ol", "dl", "select", "button", "td", "th", "object"})
# An end tag of one of these that was not opened inside the hidden element belongs to an
# element around it, and so ends the hidden one too ("</td>" after an open hidden "<p>").
# Stray inline end tags ("</span>", "</font>") are ignored, as browsers ignore them, and so
# are "</br>" and "</p>" (a browser reads those as a line break and an empty paragraph).
_STRUCTURE = re.compile(rf"(?!br$|p$)(?:{_BLOCK_NAMES}|body|html|select)", _FLAGS)


def _end_tag(name: str) -> re.Pattern[str]:
    """``</name>``, for the raw-text elements (``re`` keeps a bounded cache of these)."""
    return re.compile(rf"</{re.escape(name)}\s*>", _FLAGS)


def _drop_comments(markup: str) -> str:
    """Drop ``<!-- … -->``; ``<!-->`` and ``<!--->`` are complete (empty) comments."""
    kept: list[str] = []
    position = 0
    while (start := markup.find("<!--", position)) != -1:
        kept.append(markup[position:start])
        if markup.startswith(">", start + 4):
            position = start + 5
        elif markup.startswith("->", start + 4):
            position = start + 6
        else:
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


def _is_hidden(attributes: str) -> bool:
    """Whether a tag's ``style`` attribute (not any attribute) says ``display:none``."""
    for attribute in _ATTRIBUTE.finditer(attributes):
        if attribute[1].lower() == "style":
            style = attribute[2] or attribute[3] or attribute[4] or ""
            return _DISPLAY_NONE.search(style) is not None
    return False


def _hidden_end(markup: str, name: str, position: int) -> tuple[int, int]:
    """Where a hidden element that opened before ``position`` ends: (cut, resume).

    Text from the start tag to ``cut`` is dropped and reading resumes at ``resume``: after
    the element's end tag, or at the tag that ends it implicitly (which is kept).
    """
    stack = [name]
    for tag in _ANY_TAG.finditer(markup, position):
        tag_name = tag[2].lower()
        if tag[1]:  # an end tag
            if tag_name in stack:
                del stack[len(stack) - 1 - stack[::-1].index(tag_name) :]
                if not stack:
                    return tag.end(), tag.end()
            elif _STRUCTURE.fullmatch(tag_name):
                return tag.start(), tag.start()  # the end of an element around this one
            continue
        for depth in range(len(stack) - 1, -1, -1):
            if tag_name in _IMPLIED_END.get(stack[depth], ()):
                del stack[depth:]
                break
            if stack[depth] in _SCOPE:
                break
        if not stack:
            return tag.start(), tag.start()
        if tag_name not in _VOID and not tag[3].endswith("/"):
            stack.append(tag_name)
    return len(markup), len(markup)  # never closed: hidden to the end, as a browser would


def _drop_hidden(markup: str) -> str:
    """Drop each element styled ``display:none``, with everything inside it.

    Candidates are found by a C-level search for ``:none``; each is checked once, against
    the tag around it (looked for only back to the previous candidate, so a text full of
    ``display:none`` costs one pass, not one pass per candidate).
    """
    kept: list[str] = []
    position = 0  # the start of the text not yet copied to ``kept``
    checked = 0  # everything before this has been judged
    while hit := _NONE_VALUE.search(markup, checked):
        start = markup.rfind("<", checked, hit.start())
        tag = _START_TAG.match(markup, start) if start != -1 else None
        if tag is None or tag.end() <= hit.start():
            checked = hit.end()  # in text, or in something that is not a tag
            continue
        checked = tag.end()
        if not _is_hidden(tag[2]):
            continue
        kept.append(markup[position:start])
        name = tag[1].lower()
        if name in _VOID or tag[2].endswith("/"):
            position = tag.end()
            continue
        cut, checked = _hidden_end(markup, name, tag.end())
        position = cut
    kept.append(markup[position:])
    return "".join(kept)


def _drop_cut_tag(markup: str) -> str:
    """Drop a tag cut off at the end of the part (``…<img src="x``): it is not text."""
    end = len(markup)
    while (start := markup.rfind("<", 0, end)) != -1 and _TAG_OPENING.match(markup, start):
        if markup.find(">", start, end) != -1:
            break
        end = start
    return markup[:end]


def html_to_lines(markup: str) -> list[str]:
    """The visible text of an HTML document as cleaned, non-empty lines."""
    markup = markup.replace("\r", " ").replace("\n", " ")
    if "<!--" in markup:
        markup = _drop_comments(markup)
    if "<" in markup:
        markup = _drop_cut_tag(_drop_raw_text(markup))
        markup = _drop_hidden(markup)
        markup = _TAG.sub("", _BLOCK.sub("\n", markup))
    return clean_lines(html.unescape(markup) if "&" in markup else markup)


def text_to_lines(text: str) -> list[str]:
    """A text/plain body as cleaned, non-empty lines."""
    return clean_lines(text)
