"""One-click answers: the two buttons of a verification mail and their replies.

The prefilled subjects by language, the `mailto:` links that carry them, and
the reading of a reply by its subject alone, which decides before the body.
"""

from __future__ import annotations

import urllib.parse
from functools import lru_cache

from daemon.mail import threads as mailthread
from daemon.mail.answers.lexicon import Answer
from daemon.mail.answers.words import _words

#: The prefilled subjects of the two buttons, by language: (confirm, reject).
ONE_CLICK: dict[str, tuple[str, str]] = {
    "pl": ("Potwierdzam rozwiązanie", "Problem nadal występuje"),
    "en": ("I confirm the fix", "The problem persists"),
}
#: The words the verification mail asks for, by language: (yes, no).
ASK_WORDS: dict[str, tuple[str, str]] = {"pl": ("tak", "nie"), "en": ("yes", "no")}


def one_click_subjects(language: str, tag: str) -> tuple[str, str]:
    """The subjects of the confirm and reject buttons: "[HD-12] I confirm the fix"."""
    yes, no = ONE_CLICK.get(language, ONE_CLICK["en"])
    return f"{tag} {yes}", f"{tag} {no}"


def mailto(address: str, subject: str) -> str:
    """A `mailto:` URL (RFC 6068) with a percent-encoded UTF-8 subject."""
    return f"mailto:{address}?subject={urllib.parse.quote(subject, safe='')}"


@lru_cache(maxsize=1)
def _one_click_table() -> dict[str, Answer]:
    table: dict[str, Answer] = {}
    for yes, no in ONE_CLICK.values():
        table[" ".join(_words(yes))] = "yes"
        table[" ".join(_words(no))] = "no"
    return table


def subject_answer(subject: str, prefix: str) -> Answer | None:
    """The answer of a one-click reply, from its subject alone; None otherwise.

    The whole subject, without Re:/Odp: and the tag, must be one of the button
    subjects: a ticket about „Problem nadal występuje z drukarką” is no answer.
    """
    rest = mailthread.clean_subject(subject, prefix)
    return _one_click_table().get(" ".join(_words(rest)))
