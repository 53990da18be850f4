"""The requester's answer to "is it fixed?", read the way a person reads it.

The first word does not decide: „Tak naprawdę nadal nie działa” rejects,
„Nie ma już problemu” confirms. The reader looks at the start of the
requester's own text (quotes and signatures cut by `text.own_text`) in Polish
and English, matches a lexicon of cues longest phrase first, applies negation
within a clause („nie działa”, "not working", "no more errors", Polish negative
concord „nic nie działa” counts once), and weighs what it found:

- states decide: „działa”, "fixed", „problem zniknął” against „nadal się wiesza”,
  "still the same", „problem występuje”; both kinds at once is unclear;
- "I'll check tomorrow", „nie wiem” make a confirmation unclear (a rejection
  stays a rejection: reopening is the cheap mistake);
- answer words („tak”, "yes", „nie”, "no") decide only without a state;
- a thank-you alone is a quiet yes, a „niestety” alone a quiet no.

A one-click reply's subject („[HD-12] Potwierdzam rozwiązanie”) decides before
the body. Configured `yes_words` / `no_words` extend the lexicon. Pure: no I/O.

Where each part lives: `lexicon` (the words, as data), `words` (folding and
tokens), `lookup` (finding cues), `clauses` (what a clause says), `window`
(which lines are read), `verdict` (the weighing, `read_answer`) and
`oneclick` (the buttons and their subjects).
"""

from daemon.mail.answers.lexicon import Answer
from daemon.mail.answers.oneclick import (
    ASK_WORDS,
    ONE_CLICK,
    mailto,
    one_click_subjects,
    subject_answer,
)
from daemon.mail.answers.verdict import read_answer
from daemon.mail.answers.window import MAX_CHARS, MAX_LINES

__all__ = [
    "ASK_WORDS",
    "MAX_CHARS",
    "MAX_LINES",
    "ONE_CLICK",
    "Answer",
    "mailto",
    "one_click_subjects",
    "read_answer",
    "subject_answer",
]
