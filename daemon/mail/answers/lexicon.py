"""The lexicon of the answer reader: what words and phrases mean, as data.

Cues by role and polarity in Polish and English (states, problem nouns,
negators, idioms that only look like answers), and the small word sets the
clause reader looks out for. Kept apart so the words can grow without
touching how they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daemon.mail.answers.words import _fold

Answer = Literal["yes", "no", "unclear"]


Role = Literal[
    "pred",  # a state: works / is broken (decides)
    "topic",  # a problem noun: negative unless a predicate in its clause says more
    "partial",  # "sometimes", „częściowo”: the clause is a rejection
    "unclear",  # "not sure", „sprawdzę”: no confirmation yet
    "report",  # "I'll let you know": unclear unless it is conditional
    "check",  # "tested": nothing; negated ("haven't tested") unclear
    "yes",  # an answer word: tak / yes / potwierdzam
    "no",  # an answer word: nope / 👎
    "glad",  # thanks, a smile, "better": a quiet yes
    "sad",  # „niestety”, ":(": a quiet no
    "persist",  # "still", „nadal” alone: a quiet no
    "neg",  # a negator
    "modal",  # "should", „powinno”: what follows is not a fact
    "cond",  # "if", „jeśli”: the rest of the sentence is not a fact
    "past",  # "before", „wcześniej”: a past problem is no answer
    "present",  # "again", „teraz”: a past marker does not hide it
    "contrast",  # "but", „ale”: a new clause, and what follows weighs more
    "anymore",  # "not anymore", „już nie” standing alone
    "neutral",  # idioms that look like answers but are not („tak naprawdę”)
]


@dataclass(frozen=True, slots=True)
class Cue:
    role: Role
    polarity: int = 0  # +1 yes, -1 no


_P, _N = 1, -1


# Entries separated by "|" or a line end; an entry is a phrase of words, "*" ends a stem.
_LEXICON: dict[tuple[Role, int], str] = {
    ("pred", _P): """
        rozwiązuje|rozwiązują|naprawia|pomaga|pomagają|solves|fixes|helps|poprawiło|poprawił
        |poprawiła|poprawiły|improved|
        usunięty|usunięta|usunięte|usunięto|removed|eliminated|close|closed|happy to close
        |back online|back up|online again|up again|na to wygląda|looks like it|seems so
        |nie muszę już|już nie muszę|no longer have to|no longer need to|works|work|worked
        |working|workin|works fine|functioning|functional|operational|fixed|solved|resolved
        |sorted|sorted out|fine|good|great|perfect|perfectly|excellent|awesome|brilliant
        |fantastic|wonderful|correct|correctly|properly|normal|normally
        |okk|all set|so far so good|prints|printing|starts|opens|connects
        |loads|syncs|log in|login|sign in|logs in|drukuje|drukują|uruchamia się|startuje
        |otwiera się|otwierają się|łączy|łączy się|ładuje się|synchronizuje|zalogować
        |zalogować się|loguje|loguje się|good to go|up and running
        |back to normal|running|gone|disappeared|went away|cleared|helped|did the trick
        |that did it|nailed it|seems to work|seems to be working|appears to work|started working
        |started to work|can be closed|please close|close the ticket|close it|zamykać|zamknąć
        |no longer relevant|not needed|cannot reproduce|can not reproduce|could not reproduce
        |unable to reproduce|działa|działają|działać|działało już|chodzi|śmiga|śmigają
        |funkcjonuje|funkcjonują|naprawione|naprawiony|naprawiona|naprawiono|naprawił|naprawiła
        |naprawiło|naprawili|naprawiliście|naprawić|rozwiązane|rozwiązany|rozwiązana|rozwiązano
        |rozwiązało|rozwiązał|rozwiązała|rozwiązać|rozwiązanie|pomogło|pomogła|pomógł|pomogli
        |udało się|udało|zniknął|zniknęła|zniknęło|zniknęły|ustąpił|ustąpiła|ustąpiło|minął
        |minęło|przeszło|przeszedł|dobrze|dobra|w porządku|wporządku|spoko|git|super|świetnie
        |idealnie|doskonale|elegancko|ekstra|extra|bez zarzutu|bez zarzutów|prawidłowo|poprawnie
        |normalnie|sprawnie|wszystko gra|gra i buczy|jest ok|już ok|wszystko ok|można zamknąć
        |mozna zamykac|proszę zamknąć|do zamknięcia|zamykam|nieaktualne|nieaktualny|nieaktualna
        |nieaktualnie|zaczęło działać|zaczął działać|zaczęła działać|wygląda dobrze
        |wygląda na to że działa|jest dobrze|jest w porządku|nie mogę odtworzyć
        |nie udało mi się odtworzyć|nie udało się odtworzyć|great job|good job|brawo|fix|solve
        |resolve
    """,
    ("pred", _N): """
        offline|unavailable|unreachable|not responding|niedostępny|niedostępna|niedostępne|
        please fix|need a fix|needs fixing|proszę naprawić|
        broken|broke|wrong|fails|failing|failed|fail|failure|crash*|hangs|hanging|hung|freez*
        |frozen|stuck|down|dead|worse|same|the same|same as before|still there|still here
        |still happening|persists|persist|persisting|recurring|came back|comes back
        |back again|happens|happening|happened|occurs|occurring|occurred|appears|appearing
        |appeared|shows up|showing up|showed up|reappeared|keeps|keeps happening|nothing happens
        |nothing changed|no change|no changes|no difference|no luck|didn't help|not fixed
        |no improvement|nic się nie zmieniło|nic się nie dzieje|nic nie pomogło|bez zmian
        |brak zmian|bez efektu|bez rezultatu|bez skutku|to samo|ten sam|ta sama|te same|taki sam
        |taka sama|takie same|tak samo|identycznie|zepsute|zepsuty|zepsuta|zepsuło|zepsuł
        |zepsuła|niedziała|niedziałą|zawies*|wiesza|wieszają|wiesza się|zacina*|zacią*|zacię*
        |sypie się|wywala|wywaliło|crashuje|padł|padło|padła|leży|rozłącza|rozłączają|zrywa
        |zrywa się|występuje|występują|wystąpił|wystąpiła|wystąpiło|pojawia|pojawiają|pojawił
        |pojawiła|pojawiło|pojawiły|wraca|wrócił|wróciła|wróciło|powraca|powrócił|powtarza się
        |utrzymuje się|jest nadal|gorzej|źle|zle|błędnie|nieprawidłowo|niepoprawnie
        |jeszcze gorzej
    """,
    ("topic", _N): """
        problem*|issue|issues|error|errors|bug|bugs|trouble|troubles|fault|faults|glitch*
        |complaints|concerns|questions|worries|błąd|błędy|błędu|błędów|błędem|błędami|kłopot*
        |usterk*|awari*|zastrzeżeń|uwag|pytań|zastrzeżenia|komunikat|komunikatu
    """,
    ("partial", _N): """
        partially|partly|only partly|partial|sometimes|occasionally|intermittent*|sporadic*
        |randomly|from time to time|every now and then|not quite|not completely|not entirely
        |not fully|not really|not always|not 100|mostly works|kind of|sort of|częściowo|czasami
        |czasem|sporadycznie|od czasu do czasu|co jakiś czas|co chwilę|nie do końca|nie całkiem
        |nie zawsze|nie w pełni|tylko częściowo|raz nie|tak sobie|but only|ale tylko
    """,
    ("unclear", 0): """
        not really sure|not quite sure|not entirely sure|nie jestem do końca pewien
        |nie jestem do końca pewna|nie jestem do końca pewny|
        kiedy będzie|kiedy zostanie|kiedy to będzie|when will|kiedy ktoś|when can
        |obserwuj*|obserwow*|poobserwuj*|keep an eye|will monitor|monitoring|
        not sure|unsure|no idea|don't know|do not know|dunno|can't tell|can not tell|can't say
        |can not say|hard to say|difficult to say|too early to say|too early to tell|will check
        |will test|will try|will verify|will see|we'll see|will confirm|going to check
        |going to test|let me check|let me test|check tomorrow|check later|nie wiem
        |nie mam pojęcia|nie mam pewności|no clue|nie jestem pewien|nie jestem pewna
        |nie jestem pewny|nie wiemy|trudno powiedzieć|ciężko powiedzieć|trudno stwierdzić
        |ciężko stwierdzić|za wcześnie|sprawdzę|sprawdze|przetestuję|przetestuje|sprawdzimy
        |przetestujemy|zobaczę|zobaczymy|potwierdzę|potwierdzimy|sprawdzę jutro|jutro sprawdzę
        |dopiero jutro|muszę sprawdzić|musze sprawdzic|muszę to sprawdzić|spróbuję|sprobuje
    """,
    ("report", 0): """
        let you know|get back to you|keep you posted|keep you updated|will report|will write
        |dam znać|dam znac|dam znak|odezwę się|odezwe sie|napiszę|napisze|odpiszę|odpisze
        |damy znać|odezwiemy się
    """,
    ("check", 0): """
        test|check|try|verify|sprawdzić|przetestować|przetestowac|testować|sprawdzać|
        checked|tested|tried|verified|had a chance|had time|had the chance|had the time|looked
        |sprawdzałem|sprawdzałam|sprawdziłem|sprawdziłam|testowałem|testowałam|przetestowałem
        |przetestowałam|miałem okazji|miałam okazji|miałem czasu|miałam czasu|zdążyłem|zdążyłam
        |sprawdzaliśmy|sprawdziliśmy|próbowałem|próbowałam
    """,
    ("yes", _P): """
        ok|okay|okey|okej|oki|
        potwierdzam|potwierdzone|potwierdzony|confirm|confirmed|i confirm|confirming
        |jak najbardziej|zdecydowanie|
        yes|yep|yeah|yup|yea|ya|sure|certainly|indeed|absolutely|definitely|of course|i think so
        |i believe so|affirmative|tak|taak|takk|tak tak|no tak|owszem|zgadza się|dokładnie
        |oczywiście|jasne|pewnie|myślę że tak|chyba tak|raczej tak|wydaje mi się że tak|👍|👌|✅|✔
        |✔️|☑
    """,
    ("no", _N): """
        nope|nah|negative|no no|i don't think so|i do not think so|no nie|chyba nie|raczej nie
        |myślę że nie|not yet|👎|❌|✖|✗
    """,
    ("glad", _P): """
        better|much better|a bit better|lepiej|dużo lepiej|jest lepiej|trochę lepiej|
        thanks|thank you|thank u|thx|thnx|tnx|ty|cheers|appreciated|appreciate it|many thanks
        |dzięki|dziękuję|dziękujemy|dziękuje|dzięks|podziękowania|wielkie dzięki
        |serdecznie dziękuję|dziekuwa|:)|:-)|:d|:-d|;)|;-)|=)|🙂|😊|😀|😃|😄|😁|☺|☺️|🎉|🙏|❤|❤️
    """,
    ("sad", _N): """
        unfortunately|sadly|sorry|niestety|szkoda|:(|:-(|:/|:-/|:'(|☹|☹️|🙁|😞|😢|😟|😕|😩|😠|😡
    """,
    ("persist", _N): """
        still|nadal|wciąż|ciągle|dalej|nadal jest
    """,
    ("neg", 0): """
        no sign of|no trace of|no signs of|ani śladu|ani sladu|
        not|never|no more|none|nothing|neither|nor|without|unable|cannot|nie|nigdy|nic|żaden
        |żadna|żadne|żadnego|żadnej|żadnych|żadnym|brak|braku|bez|ani|przestał|przestała
        |przestało|przestały|przestali|stopped|ceased|nie ma już|nie ma
    """,
    ("modal", 0): """
        should|supposed|expected to|would|could|ought|powinno|powinien|powinna|powinny|miało
        |miał działać|miała działać|miały
    """,
    ("cond", 0): """
        if|unless|in case|jeśli|jeżeli|gdyby|w razie|o ile|w przypadku gdyby|jak coś|jakby co
        |jakby coś|gdyby coś|w razie czego|if anything|if needed|should anything|should it
    """,
    ("past", 0): """
        before|previously|earlier|used to|yesterday|was|were|had|last week|wcześniej|przedtem
        |poprzednio|wczoraj|był|była|było|były|byli|miałem|miałam|mieliśmy|miał|miała
    """,
    ("present", 0): """
        now|today|currently|right now|this morning|as before|than before|jak wcześniej
        |jak przedtem|jak poprzednio|co wcześniej|co przedtem|niż wcześniej|teraz|dziś|dzisiaj
        |obecnie|aktualnie|dziś rano|od rana|od wczoraj|since yesterday|since|since then
        |od tego czasu|again|once again|znowu|znów|ponownie
    """,
    ("contrast", 0): """
        but|however|although|though|yet still|ale|lecz|jednak|jednakże|natomiast|chociaż|choć
        |tylko że|aczkolwiek|mimo to
    """,
    ("anymore", 0): """
        not anymore|not any more|no longer|już nie|juz nie|nie już|już nie ma|nie więcej
    """,
    ("neutral", 0): """
        nie wiem na jak|nie wiem jak długo|nie wiem na ile|not sure how|not sure why
        |not sure what|don't know for how|don't know how long|
        appears to|appears to be|seems to|seems to be|looks to be|wydaje się|wydaje mi się|
        nie było mnie|nie ma mnie|mnie nie było|mnie nie ma|jestem na urlopie|na urlopie
        |na zwolnieniu|poza biurem|out of office|i was not in|i am not in|i am out|i am away
        |not in the office|on holiday|on vacation|on leave
        tak naprawdę|tak naprawde|tak czy inaczej|tak czy siak|tak jak|tak że|tak się składa
        |tak więc|i tak dalej|tak dalej|tak długo|tak szybko|tak często|tak bardzo|tak było
        |a tak|a tak poza tym|no cóż|no to|no i|no więc|nie ma za co|no need|nie ma potrzeby
        |nie trzeba|no rush|good morning|good afternoon|good evening|good day|good night|hi
        |hello|hey|dear|dzień dobry|dobry wieczór|witam|cześć|hej|szanowni państwo
        |szanowny panie|szanowna pani|kind regards|best regards|regards|best wishes|all the best
        |have a good day|have a nice day|have a great day|have a good weekend|miłego dnia
        |pozdrawiam|z poważaniem|hope you are well|hope you're well|hope you are fine
        |hope you are doing well|at work|from work|back at work|w pracy|co do|jeśli chodzi o
        |jeżeli chodzi o|chodzi o|chodziło o|as for|as far as|nie wiem co|nie wiem czemu
        |nie wiem dlaczego|nie wiem jak|don't know what|don't know why|don't know how
        |do not know what|do not know why|do not know how|no matter|nevermind|never mind
        |whatever|anyway|anyways|good news|nie wiem co było|nie ma problemu z
    """,
}


#: Lexicon entries whose meaning is not just their role: "no problem" and
#: „nie ma sprawy” read as a quiet yes, as people use them.
_QUIET_YES = ("no problem", "no worries", "nie ma sprawy", "not a problem", "not an issue")


#: Words whose role depends on where they stand: „nie” answers or negates,
#: "no" answers or negates a noun, „tak” answers or means "so".
_SPECIAL = frozenset({"nie", "no", "tak"})
#: Words that leave „nie” at the end of a clause an answer („chyba nie”) and
#: not a negated state („skaner nie”).
_FILLER_WORDS = (
    "a i o oh well so hmm hm um no cóż więc to że chyba raczej jeszcze już niestety na razie "
    "narazie yet ok okay ja it this that jest się"
)
_FILLERS = frozenset(_fold(w) for w in _FILLER_WORDS.split())


_WH = frozenset(
    _fold(w)
    for w in [
        "co",
        "czemu",
        "dlaczego",
        "jak",
        "kto",
        "gdzie",
        "what",
        "why",
        "how",
        "who",
        "where",
    ]
)
