"""How large a pattern would compile, judged before it is compiled.

`regex.compile` cannot be stopped, and nested counted repeats multiply into
a compiled size that exhausts memory, not time; a timeout cannot help, so
such a pattern is refused by a scan of its text first.
"""

from __future__ import annotations

import regex

#: Longest pattern accepted, in characters.
MAX_PATTERN = 4096
#: Largest compiled size accepted, estimated as the atoms a pattern expands
#: to: counted repeats are copied when compiled, so nested ones multiply
#: (`(((a{1000}){1000}){1000}){1000}` would be 10^12 copies: memory, not time).
MAX_EXPANSION = 100_000


def regex_refusal(source: str) -> str | None:
    """Why a pattern must not be compiled (its compiled size could exhaust
    memory), or None. Checked before `regex.compile`, which cannot be stopped."""
    if len(source) > MAX_PATTERN:
        return f"pattern is {len(source)} characters long (limit {MAX_PATTERN})"
    size = expansion(source)
    if size > MAX_EXPANSION:
        return (
            f"counted repeats expand it to about {size:,} atoms when compiled "
            f"(limit {MAX_EXPANSION:,}); use + or * instead of large nested {{n}}"
        )
    return None


_COUNT = regex.compile(r"\{(\d*)(,(\d*))?\}")
_VERBOSE = regex.compile(r"\(\?[a-zA-Z^-]*x")


def expansion(source: str) -> int:
    """How many atoms `source` compiles to, counted repeats multiplied out.

    A one-pass scan that errs upwards: blanks never separate a quantifier
    from its atom, a character set ends at its first `]`, and a quantifier
    on a quantifier multiplies again; an estimate too high only refuses a
    strange pattern, one too low would let memory be exhausted."""
    verbose = _VERBOSE.search(source) is not None
    stack: list[list[int]] = [[0, 0]]  # per open group: [atoms so far, atoms of the last item]
    i, end = 0, len(source)
    while i < end:
        ch, frame = source[i], stack[-1]
        atom = 1
        if ch == "\\":
            i += 2
            if source[i - 1 : i] in ("p", "P", "N", "x") and source[i : i + 1] == "{":
                close = source.find("}", i)
                i = end if close < 0 else close + 1
        elif ch == "[":
            i += 1
            i += source[i : i + 1] == "^"
            i += source[i : i + 1] == "]"
            while i < end and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
        elif ch == "(" and source.startswith("(?#", i):
            close = source.find(")", i)
            i = end if close < 0 else close + 1
            continue
        elif ch == "(":
            stack.append([0, 0])
            i += 1
            continue
        elif ch == ")":
            i += 1
            if len(stack) == 1:
                continue
            atom = max(stack.pop()[0], 1)
            frame = stack[-1]
        elif ch == "{" and (count := _COUNT.match(source, i)) and (count[1] or count[3]):
            low, high = int(count[1] or 0), count[3]
            times = int(high) if high else low + 1 if count[2] else low
            frame[0] += frame[1] * (max(times, 1) - 1)
            frame[1] *= max(times, 1)
            i = count.end()
            continue
        elif ch in "*+?|" or ch.isspace():
            i += 1
            if ch == "|":
                frame[1] = 0
            continue
        elif ch == "#" and verbose:
            newline = source.find("\n", i)
            i = end if newline < 0 else newline + 1
            continue
        else:
            i += 1
        frame[0] += atom
        frame[1] = atom
    while len(stack) > 1:
        inner = stack.pop()[0]
        stack[-1][0] += inner
    return stack[0][0]
