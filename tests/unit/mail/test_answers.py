"""Verification answers read as people write them (issue 14.2, SPEC §4).

Tables of answers as requesters type them, in Polish and English: greetings,
sign-offs, quoted history, no Polish letters, emoji, idioms that look like the
opposite answer. Each row: (the reply's text body, the expected reading).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.mail.answers import (
    MAX_CHARS,
    mailto,
    one_click_subjects,
    read_answer,
    subject_answer,
)

REPLIES = Path(__file__).resolve().parents[2] / "data" / "replies"
YES = ["yes", "ok", "confirmed", "tak", "potwierdzam"]  # rules.yaml closure defaults
NO = ["no", "not fixed", "nie"]


def answer(body: str, subject: str = "") -> str:
    return read_answer(body, subject, yes_words=YES, no_words=NO)


POLISH = [
    ("Tak naprawdę nadal nie działa", "no"),
    ("Nie ma już problemu, dziękuję!", "yes"),
    ("Tak, działa", "yes"),
    ("Działa bez zarzutu", "yes"),
    ("Wszystko gra", "yes"),
    ("Nie", "no"),
    ("Dalej to samo", "no"),
    ("Nadal się wiesza", "no"),
    ("nie działa", "no"),
    ("działa", "yes"),
    ("nie ma sprawy", "yes"),
    ("Dziękuję, działa", "yes"),
    ("Niestety nadal to samo", "no"),
    ("Już jest ok", "yes"),
    ("Nie, nadal nie działa", "no"),
    ("nie wiem", "unclear"),
    ("Tak", "yes"),
    ("tak", "yes"),
    ("TAK!", "yes"),
    ("Potwierdzam", "yes"),
    ("Nie.", "no"),
    ("Niestety nie", "no"),
    ("Chyba tak", "yes"),
    ("Raczej nie", "no"),
    ("Myślę, że tak", "yes"),
    ("Jeszcze nie sprawdzałem", "unclear"),
    ("Sprawdzę jutro i dam znać", "unclear"),
    ("Drukarka działa, skaner nie", "unclear"),
    ("Działa, ale wolno", "yes"),
    ("Problem zniknął", "yes"),
    ("Problem nadal występuje", "no"),
    ("Błąd się już nie pojawia", "yes"),
    ("Błędu już nie ma", "yes"),
    ("Problem został rozwiązany, dziękuję", "yes"),
    ("Problem nie został rozwiązany", "no"),
    ("dziala, dzieki", "yes"),
    ("nie dziala", "no"),
    ("Dzień dobry,\ntak, drukarka działa.\n\nPozdrawiam\nJan", "yes"),
    ("Dzień dobry,\n\nniestety problem wrócił po restarcie.", "no"),
    ("Nic nie działa", "no"),
    ("Nic się nie zmieniło", "no"),
    ("Częściowo działa", "no"),
    ("Czasami się jeszcze zawiesza", "no"),
    ("Nie do końca", "no"),
    ("Już nie", "unclear"),
    ("Problem? Już nie.", "yes"),
    ("Dzięki!", "yes"),
    ("Dziękuję za pomoc", "yes"),
    ("Nie wiem, co Pan zrobił, ale działa!", "yes"),
    ("Nie mogę się zalogować", "no"),
    ("Działa. Jeśli problem wróci, dam znać.", "yes"),
    ("Tak, działa, w razie problemów dam znać", "yes"),
    ("Nadal nie działa :(", "no"),
    ("Jest ok :)", "yes"),
    ("OK, sprawdzę", "unclear"),
    ("Dzień dobry, wszystko działa, dziękuję za szybką pomoc.", "yes"),
    ("Dzien dobry, wszystko dziala, dziekuje", "yes"),
    ("Witam, niestety drukarka dalej się zacina.", "no"),
    ("Tak, teraz jest dobrze.", "yes"),
    ("Nie, problem wciąż występuje.", "no"),
    ("Działa!", "yes"),
    ("Jest OK, można zamknąć.", "yes"),
    ("Zgłoszenie można zamknąć.", "yes"),
    ("Nie działa nadal", "no"),
    ("Nadal nie mogę się zalogować do VPN.", "no"),
    ("Po restarcie wszystko działa jak należy.", "yes"),
    ("Niestety nie pomogło.", "no"),
    ("Pomogło, dzięki!", "yes"),
    ("Wszystko w porządku.", "yes"),
    ("W porządku, dziękuję.", "yes"),
    ("Super, działa", "yes"),
    ("Problem powrócił", "no"),
    ("Błąd nadal się pojawia przy zapisie pliku.", "no"),
    ("Od wczoraj nie było żadnych problemów.", "yes"),
    ("Od rana działa bez problemów.", "yes"),
    ("Nie zauważyłem więcej błędów.", "yes"),
    ("Nie mam już żadnych problemów z pocztą.", "yes"),
    ("Tak, ale nadal nie działa drukowanie w kolorze.", "no"),
    ("Działa, ale tylko na jednym komputerze.", "no"),
    ("Nie jestem pewien, muszę jeszcze sprawdzić.", "unclear"),
    ("Sprawdzę w poniedziałek.", "unclear"),
    ("Jestem na urlopie, sprawdzę po powrocie.", "unclear"),
    ("Dam znać jutro.", "unclear"),
    ("Raz działa, raz nie.", "no"),
    ("Czasem działa, czasem nie", "no"),
    ("Nie wiem", "unclear"),
    ("nie wiem czy działa", "unclear"),
    ("nie.", "no"),
    ("NIE", "no"),
    ("Tak.", "yes"),
    ("tak, dziekuje", "yes"),
    ("Tak jest.", "yes"),
    ("Tak, dokładnie tak.", "yes"),
    ("Ok, dzięki", "yes"),
    ("Okej", "yes"),
    ("Spoko, działa", "yes"),
    ("Wszystko śmiga", "yes"),
    ("Nadal to samo.", "no"),
    ("To samo co wcześniej.", "no"),
    ("Bez zmian.", "no"),
    ("Dalej nie działa", "no"),
    ("Znowu się zawiesiło.", "no"),
    ("Przestało działać po godzinie.", "no"),
    ("Przestało się zawieszać", "yes"),
    ("Już się nie zawiesza.", "yes"),
    ("Teraz jest ok", "yes"),
    ("Problem rozwiązany", "yes"),
    ("Naprawione, dziękuję", "yes"),
    ("Niestety", "no"),
    ("Nie do końca, Outlook nadal czasem się zawiesza.", "no"),
    ("Nie ma problemu, już działa.", "yes"),
    ("Nie ma sprawy, dziękuję za pomoc!", "yes"),
    ("Tak naprawdę to nie wiem, jeszcze nie sprawdzałem.", "unclear"),
    ("Tak naprawdę wszystko działa.", "yes"),
    ("Dzień dobry,\n\ndziękuję, teraz działa.\n\nPozdrawiam\nAnna Nowak\nDział Kadr", "yes"),
    (
        "Dzień dobry,\nniestety dalej to samo.\n\n"
        "W dniu 3.11.2026 o 10:00, IT Help Desk pisze:\n> Prosimy o potwierdzenie\n> tak albo nie",
        "no",
    ),
    ("Potwierdzam, działa.\n\n-----Original Message-----\nFrom: IT\nSent: today\nNie", "yes"),
    ("Tak\n\nWysłane z iPhone'a", "yes"),
    ("Hej, działa, dzięki!", "yes"),
    ("Witam, drukarka dalej nie drukuje.", "no"),
    ("Drukarka drukuje.", "yes"),
    ("Nie jest ok", "no"),
    ("Wszystko jest ok", "yes"),
    ("Dziękuję bardzo, wszystko już działa poprawnie.", "yes"),
    ("Tak, drukarka drukuje normalnie.", "yes"),
    ("Niestety po ponownym uruchomieniu komputera problem wrócił.", "no"),
    ("Nie, Outlook dalej prosi o hasło.", "no"),
    ("Już wszystko ok, dzięki!", "yes"),
    ("Nadal mam ten sam błąd.", "no"),
    ("Nie mam pojęcia, nie było mnie w biurze.", "unclear"),
    ("Jeszcze nie wiem, dam znać.", "unclear"),
    ("Wygląda na to, że działa.", "yes"),
    ("Chyba działa", "yes"),
    ("Hmm, nie bardzo.", "no"),
    ("Nie bardzo", "no"),
    ("Działa jak trzeba.", "yes"),
    ("Tak, zgłoszenie można zamknąć.", "yes"),
    ("Proszę nie zamykać, problem nadal występuje.", "no"),
    ("Proszę nie zamykać zgłoszenia.", "no"),
    ("Nie zamykajcie jeszcze, sprawdzę jutro.", "no"),
    ("Tak, działa.\nDziękuję!\nJan", "yes"),
    ("Nie działa.\nW załączniku zrzut ekranu.", "no"),
    ("Działa, ale nadal jest bardzo wolno.", "unclear"),
    ("Dzień dobry, potwierdzam, że drukarka działa prawidłowo.", "yes"),
    ("Witam, wszystko śmiga, dzięki wielkie!", "yes"),
    ("Dzień dobry,\nniestety nie. Nadal pojawia się komunikat o braku papieru.", "no"),
    ("Hej, chyba jest ok, ale dam znać jak coś.", "yes"),
    ("Dziękuję, na ten moment działa.", "yes"),
    ("Na razie działa, zobaczymy jutro.", "unclear"),
    ("Tak, problem rozwiązany. Dziękuję za szybką reakcję!", "yes"),
    ("Niestety problem nadal występuje, załączam zrzut ekranu.", "no"),
    ("Sprawdziłem, działa.", "yes"),
    ("Sprawdziłam i niestety dalej to samo.", "no"),
    ("Po aktualizacji jest lepiej, ale nadal czasem się rozłącza.", "no"),
    ("Nie działa. W ogóle się nie uruchamia.", "no"),
    ("Teraz działa bez problemu, dziękuję.", "yes"),
    ("Dziękuję, problem ustąpił.", "yes"),
    ("Problem ustąpił po restarcie.", "yes"),
    ("nie dziala dalej", "no"),
    ("juz dziala, dzieki", "yes"),
    ("tak dziala", "yes"),
    ("Nie, nie działa.", "no"),
    ("Nie. Dalej się wiesza.", "no"),
    ("Nie wiem, nie było mnie dzisiaj w biurze.", "unclear"),
    ("Jeszcze nie sprawdziłam, jestem na zwolnieniu.", "unclear"),
    ("Mogę się już zalogować, dziękuję.", "yes"),
    ("Nadal nie mogę wysłać maila.", "no"),
    ("Poczta działa, ale kalendarz nadal się nie synchronizuje.", "unclear"),
    ("Wszystko jest w porządku.", "yes"),
    ("Jest lepiej.", "yes"),
    ("Dokładnie tak, działa.", "yes"),
    ("Nie ma już tego błędu.", "yes"),
    ("Błąd zniknął.", "yes"),
    ("Komunikat już się nie pokazuje.", "yes"),
    ("Dalej wyskakuje ten sam błąd.", "no"),
    ("Obawiam się, że nie.", "no"),
    ("Tak, można zamykać.", "yes"),
    ("Proszę zamknąć zgłoszenie, wszystko działa.", "yes"),
    ("Już nieaktualne, dziękuję.", "yes"),
    (
        "Dzień dobry,\n\nuprzejmie informuję, że problem z drukarką nadal nie został "
        "rozwiązany.\n\nZ poważaniem\nAnna Kowalska",
        "no",
    ),
    ("Dzień dobry,\n\nw nawiązaniu do zgłoszenia: wszystko działa poprawnie.\n\nPozdrawiam", "yes"),
    ("Szanowni Państwo,\nproblem został usunięty, dziękuję.", "yes"),
    ("Problem usunięty", "yes"),
    ("Usterka usunięta, dzięki.", "yes"),
    ("Dziękuję za informację.", "yes"),
    ("Dziękuję za informację, sprawdzę po południu.", "unclear"),
    ("Ok, dzięki, a kiedy będzie naprawiony skaner?", "unclear"),
    ("Nie, to nie pomogło.", "no"),
    ("Restart nie pomógł.", "no"),
    ("Pomógł restart, dziękuję.", "yes"),
    ("Niestety dalej nie mogę otworzyć pliku.", "no"),
    ("Wszystko OK 👍", "yes"),
    ("Działa 🙂", "yes"),
    ("Nie działa 😞", "no"),
    ("Tak! Super, dziękuję!", "yes"),
    ("Nie bardzo, nadal zacina się papier.", "no"),
    ("Oczywiście, działa.", "yes"),
    ("Jak najbardziej, działa.", "yes"),
    ("Nie jest dobrze, dalej się wiesza.", "no"),
    ("Na to wygląda, dzięki.", "yes"),
    ("Działa, ale będę jeszcze obserwować.", "unclear"),
    ("Nie muszę już restartować komputera.", "yes"),
    ("Nie sądzę.", "no"),
    ("Nie wydaje mi się.", "no"),
    ("Czy działa? Nie bardzo.", "no"),
    ("Działa? Tak.", "yes"),
    ("Tak i nie.", "unclear"),
    ("Nikt się ze mną nie kontaktował.", "no"),
    ("Problem już nie występuje.", "yes"),
    ("Żadnych problemów od wczoraj.", "yes"),
    ("Nie, już działa.", "yes"),
    # typos: one slip in a cue word of 5 letters or more
    ("Dizała, dzięki", "yes"),
    ("dzila", "yes"),
    ("Nadal nie dzaiła", "no"),
    ("Niesety nadal to samo", "no"),
    ("Sprawdze jutro", "unclear"),
    ("Dzień dobry, dziękuję za pomoc – wszystko działa tak, jak powinno.", "yes"),
    ("Dzień dobry, jeszcze raz dziękuję, komputer działa bez zarzutu.", "yes"),
    ("Witam, po wymianie tonera drukarka drukuje poprawnie, dziękuję.", "yes"),
    ("Dzień dobry, niestety nie mogę tego potwierdzić – drukarka nadal się zacina.", "no"),
    ("Dzień dobry, problem pojawił się ponownie dziś rano.", "no"),
    ("Witam, wczoraj działało, a dziś znowu to samo.", "no"),
    ("Dzień dobry, nie wiem czy to ma związek, ale teraz wolno się uruchamia.", "unclear"),
    ("Dzień dobry, wydaje się, że jest OK. Dziękuję.", "yes"),
    ("Dobry wieczór, tak – wszystko w porządku.", "yes"),
    ("Dziękuję, problem rozwiązany, można zamknąć zgłoszenie.", "yes"),
    ("Nie potwierdzam, problem nadal jest.", "no"),
    ("Nie, to jednak nie to. Błąd wciąż wyskakuje.", "no"),
    ("Tak, ok", "yes"),
    ("Tak, teraz już działa", "yes"),
    ("Jeszcze nie działa", "no"),
    ("Dalej nic", "no"),
    ("Nic się nie poprawiło.", "no"),
    ("Nic nie pomogło, dalej się wiesza.", "no"),
    ("Działa częściowo – poczta tak, kalendarz nie.", "no"),
    ("Nie mam już problemów z logowaniem, dziękuję.", "yes"),
    (
        "Dzień dobry,\nDziękuję za wiadomość.\n"
        "Po sprawdzeniu muszę niestety stwierdzić,\nże drukarka nadal nie działa.\n\n"
        "Pozdrawiam\nJan Kowalski",
        "no",
    ),
    (
        "Dzień dobry,\nwszystko działa.\nJan Kowalski\nSpecjalista ds. księgowości\n"
        "tel. 22 123 45 67",
        "yes",
    ),
    (
        "Dzień dobry Panie Piotrze,\n\n"
        "serdecznie dziękuję, już wszystko jest w porządku.\n\nZ wyrazami szacunku\nAnna",
        "yes",
    ),
    ("Panie Piotrze, niestety dalej nie mogę się zalogować.", "no"),
    ("Pani Anno, działa, bardzo dziękuję!", "yes"),
    ("Działa, chociaż trochę wolno.", "yes"),
    ("Teraz działa, ale nie wiem na jak długo.", "yes"),
    ("Nie mogę tego potwierdzić.", "no"),
    ("Potwierdzam, że problem nie występuje.", "yes"),
    ("Potwierdzam, że problem nadal występuje.", "no"),
    ("Tak, nadal występuje.", "no"),
    ("Tak, problem dalej jest.", "no"),
    ("Tak, jest lepiej.", "yes"),
    ("Tak jest, działa.", "yes"),
    ("Nie, dziękuję, już działa.", "yes"),
    ("Nie ma problemu, dzięki za pomoc.", "yes"),
    ("Nie ma za co, działa.", "yes"),
    ("Jak najbardziej", "yes"),
    ("Zdecydowanie tak.", "yes"),
    ("Zdecydowanie nie.", "no"),
    ("Nic z tego, dalej to samo.", "no"),
    ("Nie potwierdzam.", "no"),
    ("Potwierdzam rozwiązanie", "yes"),
    ("Problem nadal występuje", "no"),
    ("Dzień dobry, sprawdziłem i wszystko jest ok.", "yes"),
    ("Witam, już jest dobrze, można zamknąć.", "yes"),
    ("Hej, nadal nie mam dostępu do dysku sieciowego.", "no"),
    ("Dzień dobry, dostęp działa, dziękuję.", "yes"),
    ("Nadal brak dostępu.", "no"),
    ("Brak dostępu do folderu.", "no"),
    ("Mam już dostęp, dziękuję.", "yes"),
    ("Dzięki, wszystko śmiga jak należy :)", "yes"),
    ("Niestety, sytuacja się powtórzyła.", "no"),
    ("Sytuacja bez zmian.", "no"),
    ("Drukarka drukuje, ale skaner dalej nie skanuje.", "unclear"),
    ("Myślę, że jest ok, ale jutro potwierdzę.", "unclear"),
    ("Tak, wszystko działa jak należy. Dziękuję za szybką pomoc!", "yes"),
    ("Nie, dalej to samo. Proszę o kontakt telefoniczny.", "no"),
    ("Proszę o telefon, nadal nie działa.", "no"),
    ("Nie działa, proszę o pilny kontakt.", "no"),
    ("Chwilowo działa.", "yes"),
    ("Na chwilę obecną działa.", "yes"),
    ("Póki co działa, zobaczymy.", "unclear"),
    ("Z mojej strony wszystko ok.", "yes"),
    # emoji, quoted history, phone footers
    (
        "Działa 👍\n\nOd: IT Help Desk <helpdesk@example.com>\n"
        "Wysłano: środa, 25 listopada 2026 10:00\nDo: Jan\nTemat: [HD-12] Rozwiązane\n\n"
        "Czy problem został rozwiązany? Prosimy odpowiedzieć tak albo nie.",
        "yes",
    ),
    (
        "Nadal nie 😕\n\n-----Original Message-----\nFrom: IT Help Desk\nSent: Wednesday\n"
        "Subject: [HD-12]\n\nReply yes if solved",
        "no",
    ),
    ("Tak 😊", "yes"),
    ("Nie 😞", "no"),
    ("Nie.\n\nWysłane z mojego iPhone'a", "no"),
    ("Działa\n\n-- \nJan Kowalski\nNie odpowiadaj na tę wiadomość", "yes"),
    (
        "Problem nadal występuje.\n\nW dniu 25.11.2026 o 10:00, IT Help Desk pisze:\n"
        "> Potwierdzam rozwiązanie",
        "no",
    ),
    (
        "> Czy problem został rozwiązany?\nTak, dziękuję.\n"
        "> Jeśli nie, prosimy opisać co nie działa.\n",
        "yes",
    ),
    ("Wszystko działa, dziękuję bardzo za pomoc i cierpliwość.", "yes"),
    ("dziala juz wszystko dzieki", "yes"),
    ("nie dziala nadal", "no"),
    ("Działa, ale mam jeszcze jedno pytanie dotyczące drukarki.", "yes"),
    ("Tak, a przy okazji – czy można dodać nową drukarkę?", "yes"),
    ("Jest już dobrze, chociaż rano jeszcze się zawiesiło.", "yes"),
    ("Ok, ale to nie rozwiązuje problemu.", "no"),
    ("To nie rozwiązało problemu.", "no"),
    ("To rozwiązało problem.", "yes"),
    ("Błąd pojawia się rzadziej, ale nadal występuje.", "no"),
    ("Obecnie wszystko działa poprawnie.", "yes"),
    ("Komputer nadal się restartuje sam.", "no"),
    ("Niestety, jest jeszcze gorzej.", "no"),
    ("Poprawiło się.", "yes"),
    ("Nie poprawiło się.", "no"),
]

ENGLISH = [
    ("yes, all good", "yes"),
    ("works now", "yes"),
    ("no more problems", "yes"),
    ("no", "no"),
    ("still the same", "no"),
    ("it is broken again", "no"),
    ("not working", "no"),
    ("working", "yes"),
    ("no problem", "yes"),
    ("Thanks, that fixed it", "yes"),
    ("Unfortunately the problem is still there", "no"),
    ("I'll check tomorrow", "unclear"),
    ("👍", "yes"),
    ("ok", "yes"),
    ("Yes", "yes"),
    ("Yes, it works now, thanks!", "yes"),
    ("No, still broken", "no"),
    ("Not fixed, it still jams on page 2.", "no"),
    ("No it works now", "yes"),
    ("It works now, thank you.", "yes"),
    ("Still broken, sorry.", "no"),
    ("Thanks!", "yes"),
    ("Perfect, thank you", "yes"),
    ("I don't know", "unclear"),
    ("Not sure yet, I'll test it on Monday", "unclear"),
    ("Haven't had a chance to test it yet", "unclear"),
    ("Not yet", "no"),
    ("The printer works but the scanner doesn't", "unclear"),
    ("No issues since yesterday", "yes"),
    ("I haven't seen the error since", "yes"),
    ("The error no longer appears", "yes"),
    ("It stopped crashing", "yes"),
    ("It stopped working again", "no"),
    ("Nothing changed", "no"),
    ("Nothing happens when I click print", "no"),
    ("Same problem", "no"),
    ("Same issue as before", "no"),
    ("It's working fine now", "yes"),
    ("All good now, thanks!", "yes"),
    ("Problem solved", "yes"),
    ("Works like a charm", "yes"),
    ("Yes it's fixed", "yes"),
    ("Nope", "no"),
    ("Sadly no", "no"),
    ("It is still not working", "no"),
    ("Doesn't work", "no"),
    ("doesnt work", "no"),
    ("Looks good", "yes"),
    ("Everything is fine", "yes"),
    ("The issue persists", "no"),
    ("Still happening", "no"),
    ("I still get the same error", "no"),
    ("Thanks, but it still doesn't work", "no"),
    ("Thanks for the quick fix!", "yes"),
    ("You can close the ticket", "yes"),
    ("Please close it", "yes"),
    ("Can't reproduce it anymore", "yes"),
    ("Not anymore", "unclear"),
    ("Is the problem still there? No.", "yes"),
    ("Yes, but Outlook still crashes", "no"),
    ("It works, but only sometimes", "no"),
    ("Sometimes it works, sometimes not", "no"),
    ("It should work now but it doesn't", "no"),
    ("I think so", "yes"),
    ("I don't think so", "no"),
    ("Hi Anna,\n\nyes it works", "yes"),
    ("Hello,\nno, the VPN still drops every hour", "no"),
    ("Good morning, all fine now", "yes"),
    ("No problem, it's working now", "yes"),
    ("No worries, all good", "yes"),
    ("It worked, thanks!", "yes"),
    ("That did the trick", "yes"),
    ("Hmm, not really", "no"),
    ("Maybe", "unclear"),
    ("I'm on holiday until Monday", "unclear"),
    ("Let me check and get back to you", "unclear"),
    ("It's better but still slow", "no"),
    ("Yes, thank you!", "yes"),
    ("Yes please close it", "yes"),
    ("Yes, it's working now", "yes"),
    ("Yes all good", "yes"),
    ("Yep, all sorted", "yes"),
    ("Sorted, thanks", "yes"),
    ("All working now, thank you so much!", "yes"),
    ("Confirmed, the issue is resolved.", "yes"),
    ("No, the issue is still there.", "no"),
    ("No, it is still not working.", "no"),
    ("Still not working", "no"),
    ("Still broken", "no"),
    ("Unfortunately not.", "no"),
    ("Unfortunately it still crashes when I open large files.", "no"),
    ("It's still happening.", "no"),
    ("The same error appears again.", "no"),
    ("I still get error 0x80070005", "no"),
    ("It's fixed, thanks a lot!", "yes"),
    ("Fixed, thanks", "yes"),
    ("Working again, many thanks", "yes"),
    ("Not working.", "no"),
    ("Not fixed.", "no"),
    ("It doesn't work.", "no"),
    ("It does not work at all", "no"),
    ("It works!", "yes"),
    ("Works", "yes"),
    ("Seems to be working now.", "yes"),
    ("Looks good so far, thanks", "yes"),
    ("So far so good", "yes"),
    ("Haven't tested yet", "unclear"),
    ("I haven't had time to check yet, will do tomorrow.", "unclear"),
    ("I'm not sure, I'll let you know.", "unclear"),
    ("Will test on Monday and let you know.", "unclear"),
    ("Not sure", "unclear"),
    ("I don't know yet", "unclear"),
    ("Partially, Excel works but Word still crashes", "no"),
    ("The printer works now but the scanner still does not", "unclear"),
    ("Thanks, but no.", "no"),
    ("No thanks", "no"),
    ("No.", "no"),
    ("NO", "no"),
    ("no, same problem", "no"),
    ("Same", "no"),
    ("Same issue", "no"),
    ("Nothing has changed.", "no"),
    ("Nope, still the same", "no"),
    ("No more errors since the update, thank you", "yes"),
    ("I have not had any issues since", "yes"),
    ("Haven't had any problems since Friday.", "yes"),
    ("Everything works fine now", "yes"),
    ("Everything is ok", "yes"),
    ("It is OK now", "yes"),
    ("Fine now", "yes"),
    ("It's fine", "yes"),
    ("It's better now", "yes"),
    ("Much better, thanks", "yes"),
    ("It's worse than before", "no"),
    ("Please reopen, it is broken again", "no"),
    ("Can you close it? It works.", "yes"),
    ("Hi, it works, but only after a restart.", "no"),
    ("Hello, thanks for your help. The issue is resolved.", "yes"),
    ("Hello, thanks for your help, but the issue still persists.", "no"),
    ("Dear Support, unfortunately the problem came back this morning.", "no"),
    ("Good afternoon,\n\nyes, Teams starts again.\n\nKind regards\nMary", "yes"),
    ("Hi,\n\nIt works now, thank you.\n\nBest regards,\nJohn Smith", "yes"),
    ("On Mon, 3 Nov 2026 at 10:00, Help Desk wrote:\n> Is it fixed?\n\nYes", "yes"),
    ("yes\n> Please reply no if not", "yes"),
    ("Yes.\n\nOn Mon, Help Desk <hd@x> wrote:\n> Reply no if it is not fixed", "yes"),
    ("The problem? Gone.", "yes"),
    ("Error? Not anymore.", "yes"),
    ("Does it work? Not really.", "no"),
    ("I can't log in.", "no"),
    ("Still can't log in", "no"),
    ("Nothing works", "no"),
    ("Nothing is wrong anymore", "yes"),
    ("No error messages any more", "yes"),
    ("No issues", "yes"),
    ("No problems at all", "yes"),
    ("No idea", "unclear"),
    ("Thank you very much!", "yes"),
    ("Great, thank you", "yes"),
    ("Awesome", "yes"),
    ("Not great", "no"),
    ("Not good", "no"),
    ("not ok", "no"),
    ("Yes. Many thanks for your help!", "yes"),
    ("Nope. Still getting the error.", "no"),
    ("Seems fine for now.", "yes"),
    ("It works for now, I'll let you know if it happens again.", "yes"),
    ("Please don't close it yet, the issue is still there.", "no"),
    ("I'm afraid not.", "no"),
    ("Not at all.", "no"),
    ("All good!", "yes"),
    ("Yes!! 🙂", "yes"),
    ("Still no sound in Teams.", "no"),
    ("The VPN keeps disconnecting.", "no"),
    ("No, it's fine now.", "yes"),
    ("It has been working all day", "yes"),
    ("Everything seems to work", "yes"),
    ("Ok", "yes"),
    ("OK.", "yes"),
    ("ok thx", "yes"),
    ("Hi team, all good now. Thanks!", "yes"),
    ("Hi,\nyes, everything is working again.\nThanks,\nPeter", "yes"),
    ("Yes, please go ahead and close the ticket.", "yes"),
    ("Unfortunately no, I still can't print.", "no"),
    ("No luck, same error.", "no"),
    ("The fix worked, thank you!", "yes"),
    ("It's been fine since the restart.", "yes"),
    ("Haven't seen the issue since, thanks.", "yes"),
    ("Still seeing the same behaviour.", "no"),
    ("Still getting the pop-up every few minutes.", "no"),
    ("I'm not in the office until Thursday, I'll check then.", "unclear"),
    ("I'll try it later today and let you know.", "unclear"),
    ("Seems OK for now, I'll let you know if it happens again.", "yes"),
    ("It works on my laptop but not on my phone.", "unclear"),
    ("Outlook works now, but Teams still won't start.", "unclear"),
    ("Nope, still broken.", "no"),
    ("Yes thank you", "yes"),
    ("thx, works", "yes"),
    ("Works perfectly now.", "yes"),
    ("All sorted, cheers.", "yes"),
    ("Negative, the VPN still drops.", "no"),
    ("No, the problem came back after an hour.", "no"),
    ("It was working yesterday but today it's broken again.", "no"),
    ("Problem solved, you can close it.", "yes"),
    ("I can log in now.", "yes"),
    ("I still can't log in.", "no"),
    (
        "Good morning,\n\nI can confirm that the issue has been resolved.\n\nBest regards,\nJohn",
        "yes",
    ),
    ("Hello,\n\nthe problem still occurs intermittently.\n\nRegards", "no"),
    ("I confirm, everything works.", "yes"),
    ("Confirmed working.", "yes"),
    ("Not working yet.", "no"),
    ("It is not resolved.", "no"),
    ("This has not been fixed.", "no"),
    ("Still the same issue here.", "no"),
    ("Thank you for the update.", "yes"),
    ("Thanks for the update, I'll test it tomorrow.", "unclear"),
    ("Yes – works now.", "yes"),
    ("Hi, unfortunately it didn't help.", "no"),
    ("The restart helped, thanks.", "yes"),
    ("Great stuff, all working.", "yes"),
    ("Happy to close.", "yes"),
    ("You can close this ticket.", "yes"),
    ("Please keep it open, still failing.", "no"),
    ("Please don't close it yet.", "no"),
    ("No, everything's fine now.", "yes"),
    ("Everything is back to normal", "yes"),
    ("The printer is back online, thanks.", "yes"),
    ("The error is back.", "no"),
    ("Yes and no.", "unclear"),
    ("I don't think it's fixed.", "no"),
    ("I think it's fixed.", "yes"),
    ("Sorry for the late reply, it works now.", "yes"),
    ("Not yet, still waiting for the technician.", "no"),
    # typos: one slip in a cue word of 5 letters or more
    ("Wroks now", "yes"),
    ("It's wroking", "yes"),
    ("Thnaks, fxied", "yes"),
    ("Probelm still there", "no"),
    ("Hello, thank you - all fine now!", "yes"),
    ("Hi, yes the printer is working properly now. Many thanks.", "yes"),
    ("Hi, I'm afraid it's still not working.", "no"),
    ("Unfortunately, I'm still experiencing the same issue.", "no"),
    ("The problem seems to be resolved.", "yes"),
    ("It appears to be fixed, thank you.", "yes"),
    ("Doesn't seem to be fixed.", "no"),
    ("Not resolved, the error came back after reboot.", "no"),
    ("Issue still persists.", "no"),
    ("It's still not fixed.", "no"),
    ("Thanks, it is working again.", "yes"),
    ("Everything seems fine now, you may close the ticket.", "yes"),
    ("I have not been able to test yet.", "unclear"),
    ("I couldn't test it yet.", "unclear"),
    ("Will check on Monday, thanks.", "unclear"),
    ("It works, thanks a lot for your help!", "yes"),
    ("I still have the problem.", "no"),
    ("No, I still have the problem.", "no"),
    ("Yes, no more errors.", "yes"),
    ("No more issues, thank you.", "yes"),
    ("Ok.", "yes"),
    ("Good news, it works!", "yes"),
    ("Hi, just to confirm: everything works.", "yes"),
    ("Hi there, yes all resolved, thank you!", "yes"),
    ("Yes, but only after I restarted twice.", "no"),
    ("Hey, unfortunately that didn't fix it.", "no"),
    ("Didn't work.", "no"),
    ("Did not fix the issue.", "no"),
    ("Nope, no change.", "no"),
    ("It's not.", "no"),
    ("Sure, it's fine.", "yes"),
    ("Absolutely, works great.", "yes"),
    ("Not quite, the second monitor is still black.", "no"),
    ("I'd say yes.", "yes"),
    ("Well, no.", "no"),
    ("Not really sure yet.", "unclear"),
    ("I haven't noticed any problems since.", "yes"),
    ("We haven't had any issues since the update.", "yes"),
    ("No further problems, please close.", "yes"),
    ("Potwierdzam.", "yes"),
    ("I confirm the fix", "yes"),
    ("The problem persists", "no"),
    ("Please fix it, it still crashes.", "no"),
    ("Still no access to the shared drive.", "no"),
    ("I have access now, thanks.", "yes"),
    ("Access works now.", "yes"),
    ("Looks like it's working.", "yes"),
    ("Seems to be OK.", "yes"),
    ("It's ok now but it was broken all morning.", "yes"),
    ("Yes, resolved. Thanks for the quick turnaround.", "yes"),
    ("Hmm, it worked for an hour and then crashed again.", "no"),
    ("Partially fixed.", "no"),
    ("Fixed, but now the printer is offline.", "unclear"),
    ("No, I'm still locked out.", "no"),
    ("Still locked out.", "no"),
    ("I can't access it.", "no"),
    ("Works for me now.", "yes"),
    ("All done, thanks.", "yes"),
    ("Not working at all.", "no"),
    ("The problem is gone.", "yes"),
    ("No sign of the problem since Tuesday.", "yes"),
    ("Will confirm tomorrow.", "unclear"),
    ("Thank you, I'll confirm tomorrow once I'm back in the office.", "unclear"),
    # emoji, quoted history, phone footers
    ("👍", "yes"),
    ("👎", "no"),
    ("🙂", "yes"),
    ("😞", "no"),
    ("✅", "yes"),
    ("❌", "no"),
    ("Ok 👌", "yes"),
    ("Thanks 🙏", "yes"),
    ("Still broken 😡", "no"),
    (
        "Yes!\n\nSent from my iPhone\n\n> On 25 Nov 2026, at 10:00, IT Help Desk wrote:\n"
        "> Please reply no if not",
        "yes",
    ),
    ("Works, thanks, but I have another question about my printer.", "yes"),
    ("It's fixed, although it took a while.", "yes"),
    ("That didn't solve it.", "no"),
    ("That solved it!", "yes"),
    ("The error shows less often but still appears.", "no"),
    ("It keeps crashing.", "no"),
    ("Better, but not fixed.", "no"),
    ("It's a bit better.", "yes"),
    ("Not better.", "no"),
]


@pytest.mark.parametrize(("body", "expected"), POLISH)
def test_polish_answers(body: str, expected: str) -> None:
    assert answer(body) == expected


@pytest.mark.parametrize(("body", "expected"), ENGLISH)
def test_english_answers(body: str, expected: str) -> None:
    assert answer(body) == expected


def test_the_tables_are_large_enough() -> None:
    assert len(POLISH) >= 60 and len(ENGLISH) >= 60
    for table in (POLISH, ENGLISH):
        assert {row[1] for row in table} == {"yes", "no", "unclear"}


# --- replies as the mail clients of our users write them ------------------------------

CLIENT_REPLIES = [
    ("outlook_en.txt", "yes"),  # "It works now, thank you." below a greeting
    ("outlook_pl.txt", "yes"),
    ("outlook_original_message_en.txt", "no"),
    ("outlook_original_message_pl.txt", "no"),
    ("outlook_web_en.txt", "yes"),
    ("outlook_html2text_en.txt", "yes"),
    ("outlook_android_en.txt", "no"),  # "Still broken, sorry."
    ("outlook_android_pl.txt", "yes"),
    ("gmail_en.txt", "yes"),
    ("gmail_pl.txt", "no"),
    ("gmail_forward_en.txt", "unclear"),
    ("gmail_forward_pl.txt", "unclear"),
    ("thunderbird_en.txt", "yes"),
    ("thunderbird_pl.txt", "yes"),
    ("thunderbird_dnia_pl.txt", "unclear"),  # „Nie wiem jeszcze, sprawdzę jutro rano.”
    ("apple_mail_en.txt", "yes"),
    ("apple_mail_pl.txt", "yes"),
    ("apple_mail_desktop_pl.txt", "no"),  # „niestety problem wrócił po restarcie”
    ("plain_en.txt", "no"),  # "shows “No signal” again. It worked yesterday."
]


@pytest.mark.parametrize(("name", "expected"), CLIENT_REPLIES)
def test_client_replies(name: str, expected: str) -> None:
    assert answer((REPLIES / name).read_text(encoding="utf-8")) == expected


# --- only the start is read -----------------------------------------------------------


def test_a_long_story_after_the_answer_does_not_flip_it() -> None:
    story = (
        "Wcześniej drukarka zacinała się na każdej stronie i pokazywała błąd, "
        "więc dzwoniłem kilka razy. "
    ) * 5
    assert len(story) > MAX_CHARS
    assert answer("Tak, działa, dziękuję!\n\n" + story + "Nadal nie działa skaner.") == "yes"
    assert answer("Works now.\nLine two.\nLine three.\nStill broken, says the logfile.") == "yes"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("It does not print", "no"),  # "print" is no slip of "prints": another form
        ("Coś się działo", "unclear"),  # „działo” is no slip of „działa”
        ("Działał wczoraj", "unclear"),  # „działał” is no slip of „działa”
        ("It crashes with large files", "no"),  # "files" is no slip of "fixes"
        ("Potwierdzm", "yes"),  # a slip inside the word
    ],
)
def test_other_forms_of_a_word_are_no_typos(body: str, expected: str) -> None:
    assert answer(body) == expected


def test_a_signature_ends_what_is_read() -> None:
    assert answer("Działa.\n\nPozdrawiam\nNie Działam Sp. z o.o.") == "yes"
    assert answer("Works.\nBest regards\nNo-Reply Team") == "yes"


# --- configured words -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "yes_words", "no_words", "expected"),
    [
        ("Roger", ["roger"], [], "yes"),  # a word of one's own
        ("Roger", [], [], "unclear"),
        ("Not roger", ["roger"], [], "no"),  # negation applies to it too
        ("kaputt", [], ["kaputt"], "no"),
        ("jawohl, es geht", ["jawohl"], [], "yes"),
        ("działa", [], ["działa"], "no"),  # configured words win over the built-in ones
        ("yes", [], [], "yes"),  # the built-in lexicon stays without configuration
        ("yes", ["", "  "], [""], "yes"),  # empty words are ignored
        ("not fixed", ["yes"], ["not fixed"], "no"),
    ],
)
def test_configured_words(
    body: str, yes_words: list[str], no_words: list[str], expected: str
) -> None:
    assert read_answer(body, yes_words=yes_words, no_words=no_words) == expected


# --- one-click answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[HD-12] Potwierdzam rozwiązanie", "yes"),
        ("Re: [HD-12] Potwierdzam rozwiązanie", "yes"),
        ("Odp: [hd-0012] potwierdzam rozwiazanie", "yes"),
        ("RE: [HD-12] Problem nadal występuje", "no"),
        ("[HD-12] I confirm the fix", "yes"),
        ("Re: [HD-12] The problem persists", "no"),
        ("Re: [HD-12] Rozwiązane: Problem nadal występuje z drukarką — prosimy o...", None),
        ("Re: [HD-12] Przypomnienie: czy „Drukarka” działa?", None),
        ("Re: [HD-12] Printer", None),
        ("", None),
    ],
)
def test_one_click_subjects_are_read_alone(subject: str, expected: str | None) -> None:
    assert subject_answer(subject, "HD") == expected


def test_the_subject_of_a_one_click_reply_decides_before_the_body() -> None:
    quoted = "\n\nW dniu 3.11.2026 o 10:00, IT Help Desk pisze:\n> Czy działa? tak / nie\n"
    assert answer(quoted, "Re: [HD-12] Potwierdzam rozwiązanie") == "yes"
    assert answer("Tak, działa" + quoted, "Re: [HD-12] Problem nadal występuje") == "no"
    assert answer("Nadal nie działa", "Re: [HD-12] Rozwiązane: Drukarka") == "no"


@pytest.mark.parametrize("language", ["pl", "en", "de"])
def test_one_click_links_are_mailto_urls_that_read_back(language: str) -> None:
    subjects = one_click_subjects(language, "[HD-12]")
    for subject, expected in zip(subjects, ("yes", "no"), strict=True):
        url = urlsplit(mailto("helpdesk@example.com", subject))
        assert (url.scheme, url.path) == ("mailto", "helpdesk@example.com")
        assert " " not in url.query and "[" not in url.query
        [decoded] = parse_qs(url.query)["subject"]
        assert decoded == subject
        assert subject_answer("Re: " + decoded, "HD") == expected


# --- properties -----------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "tak",
        "nie",
        "no",
        "yes",
        "not",
        "działa",
        "works",
        "problem",
        "nadal",
        "?",
        ",",
        ".",
        "\n",
        "> quoted",
        "-- ",
        "😊",
        "n't",
        "'",
        "ale",
        "jeśli",
        "nie ma",
        "już nie",
        "",
    ]
)


@given(
    st.one_of(st.text(), st.lists(_PIECES, max_size=30).map(" ".join)),
    st.text(max_size=40),
    st.lists(st.text(max_size=8), max_size=3),
    st.lists(st.text(max_size=8), max_size=3),
)
def test_reading_never_raises(body: str, subject: str, yes: list[str], no: list[str]) -> None:
    assert read_answer(body, subject, yes_words=yes, no_words=no) in ("yes", "no", "unclear")
