"""Hostile mail costs time in proportion to its size: doubling the input doubles the work.

Capture reads one mail at a time, so one slow mail delays every lead behind it. Each test
times one input at three sizes (n, 2n, 4n) in the same run, in turns, keeping the fastest
of several tries, and checks that quadrupling the input costs less than 8× (linear work
costs 4×, quadratic 16×). No absolute time is asserted: only the ratio of two sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from leadtui.formats.html import html_to_lines
from leadtui.formats.mime import Mail, decode_words

TRIES = 5


def _growth(run: Callable[[int], object], n: int) -> list[float]:
    """CPU seconds (fastest of ``TRIES``) to run at ``n``, ``2n`` and ``4n``."""
    sizes = (n, 2 * n, 4 * n)
    best = [float("inf")] * len(sizes)
    for _ in range(TRIES):
        for index, size in enumerate(sizes):
            start = time.process_time()
            run(size)
            best[index] = min(best[index], time.process_time() - start)
    return best


def _assert_linear(run: Callable[[int], object], n: int) -> None:
    small, double, quadruple = _growth(run, n)
    ratio = quadruple / max(small, 1e-6)
    assert ratio < 8, f"n, 2n, 4n took {small:.4f}, {double:.4f}, {quadruple:.4f} s: ×{ratio:.1f}"


def _folded(lines: int) -> bytes:
    fold = b"".join(b"\r\n\tFly Ash Bricks and more bricks" for _ in range(lines))
    return (
        b"From: IndiaMART <buyershelp+enq@indiamart.com>\r\nSubject: Enquiry for"
        + fold
        + b"\r\nContent-Type: text/plain\r\n\r\nI am looking for Fly Ash Bricks.\r\n"
    )


def test_a_header_folded_over_many_lines_is_read_in_linear_time() -> None:
    def run(lines: int) -> None:
        mail = Mail(_folded(lines))
        assert mail.subject.endswith("more bricks")
        assert mail.headers["content-type"] == "text/plain"

    _assert_linear(run, 10_000)


def test_adjacent_encoded_words_are_decoded_in_linear_time() -> None:
    def run(words: int) -> None:
        value = " ".join("=?utf-8?q?Fly_Ash_Bricks_?=" for _ in range(words))
        assert decode_words(value).startswith("Fly Ash Bricks Fly")

    _assert_linear(run, 10_000)


def test_a_folded_subject_of_encoded_words_is_read_in_linear_time() -> None:
    """The bench's 5 MB header: folding and encoded words together, through the parser."""

    def run(lines: int) -> None:
        fold = b"".join(b"\r\n\t=?utf-8?q?Fly_Ash_Bricks_?=" for _ in range(lines))
        raw = b"From: x@indiamart.com\r\nSubject: Enquiry for" + fold + b"\r\n\r\nbody\r\n"
        assert Mail(raw).subject.startswith("Enquiry for Fly Ash Bricks Fly")

    _assert_linear(run, 10_000)


def test_text_full_of_display_none_is_rendered_in_linear_time() -> None:
    def run(repeats: int) -> None:
        lines = html_to_lines("<p>" + "display:none " * repeats + "</p><p>Buyer: Ravi</p>")
        assert lines[-1] == "Buyer: Ravi"

    _assert_linear(run, 20_000)


def test_an_attribute_full_of_display_none_is_rendered_in_linear_time() -> None:
    def run(repeats: int) -> None:
        markup = '<p title="' + "display:none; " * repeats + '">Buyer: Ravi</p>'
        assert html_to_lines(markup) == ["Buyer: Ravi"]

    _assert_linear(run, 20_000)


def test_many_hidden_elements_are_rendered_in_linear_time() -> None:
    def run(repeats: int) -> None:
        markup = '<p style="display:none">pre ' * repeats + "<div>Buyer: Ravi</div>"
        assert html_to_lines(markup) == ["Buyer: Ravi"]

    _assert_linear(run, 2_000)


def test_tags_cut_off_everywhere_are_rendered_in_linear_time() -> None:
    def run(repeats: int) -> None:
        assert html_to_lines("Buyer: Ravi " + '<a title="x' * repeats) == ["Buyer: Ravi"]

    _assert_linear(run, 20_000)
