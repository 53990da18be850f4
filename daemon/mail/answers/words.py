"""Text into words for the answer reader: folding, contractions, tokens, clauses.

Casefolded without diacritics (people type „dziala”), English contractions
spelled out, emoticons and emoji kept as words, and the text cut into
sentences of clauses, a contrast word starting a new clause.
"""

from __future__ import annotations

import re
import unicodedata


def _fold(value: str) -> str:
    """Casefolded, without diacritics (people type „dziala”), apostrophes unified."""
    value = value.casefold().replace("ł", "l")
    for quote in "’‘`´ʼ":
        value = value.replace(quote, "'")
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(value: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _fold(value))


_CONTRACTIONS = {
    "can't": ["can", "not"],
    "cant": ["can", "not"],
    "cannot": ["can", "not"],
    "won't": ["will", "not"],
    "wont": ["will", "not"],
    "shan't": ["shall", "not"],
    "ain't": ["is", "not"],
    "aint": ["is", "not"],
    "dont": ["do", "not"],
    "doesnt": ["does", "not"],
    "didnt": ["did", "not"],
    "isnt": ["is", "not"],
    "arent": ["are", "not"],
    "wasnt": ["was", "not"],
    "werent": ["were", "not"],
    "havent": ["have", "not"],
    "hasnt": ["has", "not"],
    "hadnt": ["had", "not"],
    "couldnt": ["could", "not"],
    "wouldnt": ["would", "not"],
    "shouldnt": ["should", "not"],
    "im": ["i", "am"],
    "ive": ["i", "have"],
    "thats": ["that", "is"],
    "theres": ["there", "is"],
}
_SUFFIXES = {"n't": "not", "'ll": "will", "'m": "am", "'re": "are", "'ve": "have", "'d": "would"}


def _expand(word: str) -> list[str]:
    """English contractions as words: "doesn't" is "does not", "I'll" is "I will"."""
    if word in _CONTRACTIONS:
        return list(_CONTRACTIONS[word])
    for suffix, full in _SUFFIXES.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            return [word[: -len(suffix)], full]
    if word.endswith("'s") and len(word) > 2:
        return [word[:-2], "is"]
    return [word]


# Tokens: words (with inner apostrophes or hyphens), emoticons, emoji, breaks.
_EMOTICON = r"[:;=]'?-?[()dp/]"
_TOKEN = re.compile(
    rf"(?P<emo>{_EMOTICON})(?![a-z0-9])"
    r"|(?P<word>[a-z0-9]+(?:['-][a-z0-9]+)*'?)"
    r"|(?P<sent>[.!?;\n]+)"
    r"|(?P<clause>[,:()\[\]\"“”„«»–—]|\s-+\s|^-+\s)"
    r"|(?P<sym>[^\sa-z0-9])"
)


def _tokens(value: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind is "w" (word or emoji), "clause" or "sent"."""
    out: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(_fold(value)):
        kind = match.lastgroup or "sym"
        token = match.group()
        if kind == "word":
            out += [("w", w) for w in _expand(token.strip("'"))]
        elif kind == "emo":
            out.append(("w", token))
        elif kind == "sym":
            if not unicodedata.category(token).startswith(("P", "Z", "C")):
                out.append(("w", token))  # an emoji
        else:
            out.append((kind, token))
    return out


#: "works, although it took a while": what is conceded is not the answer.
_CONCESSIVE = frozenset(_fold(w) for w in ["although", "though", "chociaż", "choć"])
#: "worked for an hour and then crashed": the later state is the one that holds.
_THEN = frozenset(_fold(w) for w in ["then", "potem", "później", "afterwards"])
_CONTRASTS = _THEN | frozenset(
    _fold(w)
    for w in [
        "but",
        "however",
        "although",
        "though",
        "ale",
        "lecz",
        "jednak",
        "jednakże",
        "natomiast",
        "chociaż",
        "choć",
    ]
)


def _sentences(value: str) -> list[list[list[str]]]:
    """Sentences of clauses of words; a contrast word starts a clause."""
    sentences: list[list[list[str]]] = [[[]]]
    for kind, token in _tokens(value):
        if kind == "sent":
            if token.strip() and "?" in token:
                sentences[-1].append(["?"])
            sentences.append([[]])
        elif kind == "clause":
            sentences[-1].append([])
        elif token in _CONTRASTS:
            sentences[-1].append([token])  # "works, but..." / „działa, ale...”
        else:
            sentences[-1][-1].append(token)
    return [[c for c in s if c] for s in sentences if any(s)]
