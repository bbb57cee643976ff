"""Compare two printed outputs the way a reader does: the words exactly, the numbers as numbers.

Another CPU family sums in another order (its BLAS kernels, numpy's SIMD loops), so the same
command prints floats that differ in their last bits. A golden output or a doc transcript must
not fail on that, and must still fail on any real change. The rules:

- text (every character that is not part of a number) is compared exactly, whitespace included,
  except that the padding right next to a number may grow or shrink when that number is printed
  with another number of characters (a right-justified table cell);
- a number without a decimal point or an exponent (a count, a seed, a step, an exit code) is
  text: exact;
- a full-precision float (either side printed with at least FULL_DIGITS significant digits:
  JSON and CSV write ``repr``) may differ by FULL_REL relative;
- a short printed float (``1.3e-35``, ``0.92``, ``-4.8``) must be the same, unless the two are
  adjacent roundings: they differ by one unit in the last digit of the more precise of the two,
  which is what two values a rounding step apart, on either side of a rounding boundary, print.
  A value anywhere else cannot print differently on another family (1e-12 is far below a
  printed digit), so a difference of two units, or of one unit in a less precise digit, fails.

``differences(expected, actual)`` lists what differs; an empty list means the same.
"""

from __future__ import annotations

import math
import re

FULL_DIGITS = 10  # significant digits from which a printed float counts as full precision
FULL_REL = 1e-9  # relative tolerance on full-precision floats

# a number standing alone: not part of a word (x0.59, dh_p10, log10), of a version (2.4.6) or a hash
NUMBER = r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w]|\.\d)"
TOKEN = re.compile(rf"(?P<num>{NUMBER})|(?P<ws>\s+)|(?P<text>[^\s\d.+-]+|.)")


def tokens(line: str) -> list[tuple[str, str]]:
    """(kind, text) pieces of a line, kind num, ws or text, adjacent text pieces joined."""
    out: list[tuple[str, str]] = []
    for match in TOKEN.finditer(line):
        kind = match.lastgroup
        if kind == "text" and out and out[-1][0] == "text":
            out[-1] = ("text", out[-1][1] + match.group())
        else:
            out.append((kind, match.group()))
    return out


def is_float(text: str) -> bool:
    return "." in text or "e" in text.lower()


def significant_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text)[0].lstrip("+-").replace(".", "").lstrip("0")
    return len(mantissa)


def last_digit_unit(text: str) -> float:
    """The value of one unit in the last printed digit: 0.01 for "-4.81", 1e-36 for "1.3e-35"."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_number(expected: str, actual: str) -> bool:
    """Whether two printed numbers say the same (see the module's rules)."""
    if expected == actual:
        return True
    if not (is_float(expected) or is_float(actual)):
        return False  # integers are exact
    a, b = float(expected), float(actual)
    if max(significant_digits(expected), significant_digits(actual)) >= FULL_DIGITS:
        return math.isclose(a, b, rel_tol=FULL_REL, abs_tol=0.0)
    unit = min(last_digit_unit(expected), last_digit_unit(actual))
    return abs(a - b) <= unit * (1 + 1e-9)


def line_differences(expected: str, actual: str) -> str | None:
    """None if the two lines say the same, else why not."""
    if expected == actual:
        return None
    left, right = tokens(expected), tokens(actual)
    if [k for k, _ in left] != [k for k, _ in right]:
        return "the text differs"
    for i, ((kind, a), (_, b)) in enumerate(zip(left, right)):
        if kind == "text" and a != b:
            return f"text {a!r} is {b!r}"
        if kind == "num" and not same_number(a, b):
            return f"number {a} is {b}"
        if kind == "ws" and a != b:
            # padding may change only beside a number printed with another width
            beside = [j for j in (i - 1, i + 1) if 0 <= j < len(left) and left[j][0] == "num"]
            if not any(len(left[j][1]) != len(right[j][1]) for j in beside):
                return "the spacing differs"
    return None


def differences(expected: str, actual: str) -> list[str]:
    """Every line of ``actual`` that does not say what the same line of ``expected`` says."""
    left, right = expected.splitlines(), actual.splitlines()
    out = []
    if len(left) != len(right):
        out.append(f"{len(right)} lines where {len(left)} were expected")
    for n, (a, b) in enumerate(zip(left, right), 1):
        why = line_differences(a, b)
        if why:
            out.append(f"line {n}: {why}\n  - {a}\n  + {b}")
    return out


def same_line(expected: str, actual: str) -> bool:
    return line_differences(expected, actual) is None
