"""Callback promises and their due times, resolved against the call's time (deterministic rules)."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.analysis.callbacks import analyse_callback, detect_promise, resolve_due
from pipeline.analysis.text import TurnView

FRIDAY_10_15 = datetime(2026, 11, 20, 10, 15)


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("I'll call you tomorrow morning", datetime(2026, 11, 21, 10, 0)),
        ("we'll ring you later today", datetime(2026, 11, 20, 12, 15)),
        ("I'll call you Monday afternoon", datetime(2026, 11, 23, 15, 0)),
        ("I'll call you back in two hours", datetime(2026, 11, 20, 12, 15)),
        ("I'll call you back within the hour", datetime(2026, 11, 20, 11, 15)),
        ("in half an hour", datetime(2026, 11, 20, 10, 45)),
        ("tomorrow at 3", datetime(2026, 11, 21, 15, 0)),
        ("tomorrow at half past two", datetime(2026, 11, 21, 14, 30)),
        ("next Tuesday at 10am", datetime(2026, 11, 24, 10, 0)),
        ("on the 25th", datetime(2026, 11, 25, 10, 0)),
        ("this evening", datetime(2026, 11, 20, 18, 0)),
        ("by the end of the day", datetime(2026, 11, 20, 17, 0)),
        ("at 9", datetime(2026, 11, 21, 9, 0)),  # 9 o'clock has passed: tomorrow
        ("Yarın sabah sizi arayacağız", datetime(2026, 11, 21, 10, 0)),
        ("saat 3'te arayalım", datetime(2026, 11, 20, 15, 0)),
        ("iki saat sonra ararız", datetime(2026, 11, 20, 12, 15)),
        ("pazartesi öğleden sonra dönüş yapacağız", datetime(2026, 11, 23, 15, 0)),
        # the rubric's table
        ("by Wednesday", datetime(2026, 11, 25, 17, 0)),
        ("by close of business Monday", datetime(2026, 11, 23, 17, 0)),
        ("before five today", datetime(2026, 11, 20, 17, 0)),
        ("within the week", datetime(2026, 11, 20, 17, 0)),
        ("hafta içinde", datetime(2026, 11, 20, 17, 0)),
        ("within twenty-four hours", datetime(2026, 11, 21, 10, 15)),
        ("after six this evening", datetime(2026, 11, 20, 18, 0)),
        ("around seven in the evening", datetime(2026, 11, 20, 19, 0)),
        ("akşam yedi gibi", datetime(2026, 11, 20, 19, 0)),
        ("on the twelfth of December", datetime(2026, 12, 12, 10, 0)),
        ("in about twenty minutes", datetime(2026, 11, 20, 10, 35)),
        ("next Monday", datetime(2026, 11, 23, 10, 0)),
        ("yarın saat on birde", datetime(2026, 11, 21, 11, 0)),
        # hours and offsets as numbers in words or as Whisper writes them
        ("İş ortaklığı ekibimiz sizi yirmi dört saat içinde arayacak", datetime(2026, 11, 21, 10, 15)),
        ("we'll call you within twenty-four hours", datetime(2026, 11, 21, 10, 15)),
        ("I'll ring you back in forty-five minutes", datetime(2026, 11, 20, 11, 0)),
        ("I'll ring you at half 2 tomorrow", datetime(2026, 11, 21, 14, 30)),
        ("I'll call you at quarter to 10 on Monday", datetime(2026, 11, 23, 9, 45)),
        # the visit's time said as "for eight tomorrow"
        ("You're on for eight tomorrow", datetime(2026, 11, 21, 8, 0)),
        # Turkish hours with the case endings a time takes, also on the 24-hour clock
        ("saat on bire yazıyorum", datetime(2026, 11, 20, 11, 0)),
        ("saat ikiye ustamızı yönlendiriyorum", datetime(2026, 11, 20, 14, 0)),
        ("saat on dörtte", datetime(2026, 11, 20, 14, 0)),
        ("saat üç buçukta", datetime(2026, 11, 20, 15, 30)),
        ("öğleden sonra iki uygun", datetime(2026, 11, 20, 14, 0)),
        # a day of the month said in words
        ("yirmi bir Kasım'da sizi arayıp bilgi vereceğiz", datetime(2026, 11, 21, 10, 0)),
        # ...while English "on" before a month stays a preposition, not Turkish "ten"
        ("I'll call you on December 3rd", datetime(2026, 12, 3, 10, 0)),
        # Turkish deadlines: "before five" and "by five"
        ("bugün saat beşten önce sizi arayacağım", datetime(2026, 11, 20, 17, 0)),
        ("saat dörde kadar dönüş yapacağız", datetime(2026, 11, 20, 16, 0)),
        # English "once" after a duration is no Turkish "önce" (a lead before a visit)
        ("I'll ring you back in about twenty minutes once I've spoken to them", datetime(2026, 11, 20, 10, 35)),
    ],
)
def test_time_phrases_resolve_to_absolute_times(phrase: str, expected: datetime) -> None:
    due = resolve_due(phrase, FRIDAY_10_15)
    assert due is not None
    assert due.due == expected


@pytest.mark.parametrize(
    ("phrase", "window_end"),
    [
        # the rubric's windows: a clock time +-30 min, "about N minutes" +-10, day parts and a date to an hour
        # of that day, deadlines to the deadline
        ("tomorrow at 3", datetime(2026, 11, 21, 15, 30)),
        ("around seven in the evening", datetime(2026, 11, 20, 19, 30)),
        ("in about twenty minutes", datetime(2026, 11, 20, 10, 45)),
        ("I'll call you back within the hour", datetime(2026, 11, 20, 11, 15)),
        ("I'll call you tomorrow morning", datetime(2026, 11, 21, 12, 0)),
        ("I'll call you Monday afternoon", datetime(2026, 11, 23, 18, 0)),
        ("after six this evening", datetime(2026, 11, 20, 21, 0)),
        ("on the twelfth of December", datetime(2026, 12, 12, 18, 0)),
        ("I'll ring you tomorrow", datetime(2026, 11, 21, 18, 0)),
        ("by Wednesday", datetime(2026, 11, 25, 17, 0)),
        ("before five today", datetime(2026, 11, 20, 17, 0)),
        ("within the week", datetime(2026, 11, 20, 17, 0)),
        ("within twenty-four hours", datetime(2026, 11, 21, 10, 15)),
        ("yarın sizi arayacağız", datetime(2026, 11, 21, 18, 0)),
    ],
)
def test_each_time_phrase_gets_the_end_of_its_rubric_window(phrase: str, window_end: datetime) -> None:
    due = resolve_due(phrase, FRIDAY_10_15)
    assert due is not None
    assert due.window_end == window_end


def test_a_call_before_a_visit_has_a_quarter_hour_window_and_the_window_reaches_the_record() -> None:
    turns = _turns(("agent", "The engineer is booked for Monday at ten."),
                   ("customer", "Great."),
                   ("agent", "She'll ring you twenty minutes before she arrives."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert (result.due, result.window_end) == (datetime(2026, 11, 23, 9, 40), datetime(2026, 11, 23, 9, 55))


def test_an_hour_heard_as_another_is_still_an_hour_at_most() -> None:
    # Whisper at 16 kHz wrote "I'll give you a call back in an hour at most." as "... in another at most."
    turns = _turns(("agent", "I don't know yet who's free at four. Let me check with the coordinator, and I'll "
                             "give you a call back in another at most."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert (result.due, result.window_end) == (datetime(2026, 11, 20, 11, 15), datetime(2026, 11, 20, 11, 15))
    another_day = resolve_due("we'll ring you in another two days", FRIDAY_10_15)  # something to count: no hour
    assert another_day is None or another_day.due != datetime(2026, 11, 20, 11, 15)


def test_no_time_phrase_gives_no_due_time() -> None:
    assert resolve_due("we'll call you once the part arrives", FRIDAY_10_15) is None


def _turns(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=role, text=text, start=i * 5.0, end=i * 5.0 + 4) for i, (role, text) in
            enumerate(lines)]


def test_agent_promise_is_a_pending_callback_due_next_day() -> None:
    turns = _turns(("customer", "The part still hasn't come."),
                   ("agent", "I'm sorry. I'll call you back tomorrow morning at ten with a date."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert result.promised and result.status == "pending" and result.by == "agent"
    assert result.due == datetime(2026, 11, 21, 10, 0)
    assert result.evidence[0].turn == 1


def test_customer_asking_and_agent_agreeing_is_a_promise() -> None:
    turns = _turns(("customer", "I'm driving, could you ring me on Monday morning instead?"),
                   ("agent", "Sure, Monday morning is fine."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 23, 10, 0)


def test_technician_promise_names_who_will_call() -> None:
    turns = _turns(("agent", "I'll get the plumber to ring you this afternoon to arrange it."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert result.promised and result.by == "technician"
    assert result.due == datetime(2026, 11, 20, 15, 0)


def test_due_time_comes_from_the_promise_sentence_not_other_days_in_the_turn() -> None:
    turns = _turns(("agent", "I've found the job from Monday. I'll get the plumber to ring you this afternoon."))
    assert analyse_callback(turns, FRIDAY_10_15).due == datetime(2026, 11, 20, 15, 0)


@pytest.mark.parametrize(
    "lines",
    [
        [("agent", "If you change your mind, feel free to call us back any time.")],
        [("customer", "I'll think about it and I'll call you back if we decide."), ("agent", "Of course.")],
        [("agent", "You'll need to call the manufacturer's service line.")],
        [("customer", "I called yesterday and nobody answered.")],
        [("agent", "Shall I call you in the spring to arrange a survey?"),
         ("customer", "No thanks, I'll get in touch when we're ready.")],
    ],
)
def test_mentions_of_calling_without_a_company_promise_are_not_callbacks(lines: list[tuple[str, str]]) -> None:
    result = analyse_callback(_turns(*lines), FRIDAY_10_15)
    assert not result.promised and result.status == "none"


def test_offer_accepted_by_the_customer_is_a_promise() -> None:
    turns = _turns(("agent", "How about I give you a ring later today once you've checked?"),
                   ("customer", "That would be great, yes."))
    result = analyse_callback(turns, FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 20, 12, 15)


def test_llm_turn_adds_a_promise_only_on_a_turn_about_calling() -> None:
    not_about_calling = _turns(("agent", "Your booking is for Thursday."))
    assert analyse_callback(not_about_calling, FRIDAY_10_15, llm_turn=0).promised is False
    unusual_wording = _turns(("agent", "Our engineer is going to phone you on Friday about the part."))
    assert analyse_callback(unusual_wording, FRIDAY_10_15).promised is False  # the rules miss it
    with_llm = analyse_callback(unusual_wording, FRIDAY_10_15, llm_turn=0)
    assert with_llm.promised and with_llm.source == "llm" and with_llm.by == "technician"
    assert with_llm.due == datetime(2026, 11, 27, 10, 0)


def test_a_reported_past_request_is_not_a_new_callback_request() -> None:
    turns = [
        TurnView(0, "customer", "Nobody came. I rang you at half five and was told someone would ring me back. "
                                "Nobody did.", 0, 5),
        TurnView(1, "agent", "Okay. Name and postcode?", 6, 8),
    ]
    assert detect_promise(turns) is None
    asked = [TurnView(0, "customer", "Would you call me back after six? I'm driving.", 0, 3),
             TurnView(1, "agent", "Of course, I'll note that down.", 4, 6)]
    assert detect_promise(asked) is not None


def test_an_agent_who_cannot_promise_a_call_has_not_promised_one() -> None:
    turns = [TurnView(0, "agent", "I'll pass it on. I can't promise anyone will call you though.", 0, 4)]
    assert detect_promise(turns) is None


def test_the_time_after_the_promise_wins_over_an_earlier_time_in_the_sentence() -> None:
    turns = [TurnView(0, "agent", "I'll check with him this morning and ring you back before five today.", 0, 4),
             TurnView(1, "customer", "Thanks.", 5, 6)]
    result = analyse_callback(turns, datetime(2026, 11, 23, 8, 20))
    assert result.promised and result.due is not None and result.due.hour == 17


def test_turkish_promise_with_a_time_between_the_words_is_found() -> None:
    turns = [TurnView(0, "agent", "Sizi bu akşam saat altıda arayacağız.", 0, 3)]
    result = analyse_callback(turns, datetime(2026, 11, 5, 10, 30))
    assert result.promised and result.due is not None and (result.due.day, result.due.hour) == (5, 18)


def test_british_half_two_is_half_past_two_in_the_afternoon() -> None:
    due = resolve_due("I'll ring you back at half two", datetime(2026, 12, 1, 10, 0))
    assert due is not None and (due.due.hour, due.due.minute) == (14, 30)


@pytest.mark.parametrize("said", ["I'll give you a bell first thing tomorrow to confirm the slot.",
                                  "Tabii, yarın öğlen sizi bu numaradan arıyorum."])
def test_idiomatic_promises_to_call_are_found(said: str) -> None:
    result = analyse_callback([TurnView(0, "agent", said, 0, 4)], datetime(2026, 12, 7, 10, 0))
    assert result.promised and result.due is not None and result.due.day == 8


@pytest.mark.parametrize(
    ("lines", "by"),
    [
        ([("customer", "I'm in a meeting, I'll ring you back after lunch.")], "customer"),
        ([("customer", "My wife will call you this evening to book it.")], "customer"),
        ([("agent", "Shall I give you a ring on Monday?"), ("customer", "Yes please.")], "agent"),
        ([("agent", "The engineer is booked for ten on Friday and she'll ring twenty minutes before.")],
         "technician"),
    ],
)
def test_every_promise_form_of_the_rubric_is_a_promise(lines: list[tuple[str, str]], by: str) -> None:
    result = analyse_callback(_turns(*lines), FRIDAY_10_15)
    assert result.promised and result.by == by


@pytest.mark.parametrize(
    "said",
    ["We'll email you the details by Monday.", "A text will confirm it tomorrow.", "Call us if anything changes.",
     "I might ring back, not sure.", "I can't promise anyone will call you."],
)
def test_writing_maybes_conditions_and_refusals_are_not_promises(said: str) -> None:
    assert analyse_callback(_turns(("agent", said), ("customer", "Okay.")), FRIDAY_10_15).promised is False


def test_a_call_before_a_visit_is_due_the_lead_time_before_the_appointment() -> None:
    turns = _turns(("agent", "The engineer is booked for Monday at ten."),
                   ("customer", "Great."),
                   ("agent", "She'll ring you twenty minutes before she arrives."))
    assert analyse_callback(turns, FRIDAY_10_15).due == datetime(2026, 11, 23, 9, 40)


def _call(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=r, text=t, start=i * 4.0, end=i * 4.0 + 3) for i, (r, t) in enumerate(lines)]


def test_an_agent_getting_a_colleague_to_phone_is_a_promise() -> None:
    result = analyse_callback(_call(
        ("customer", "I wanted to see about a mortgage."),
        ("agent", "What I'll do is get one of our mortgage advisers to phone you tomorrow morning. Is that alright?"),
        ("customer", "Perfect, thanks.")), FRIDAY_10_15)
    assert result.promised and result.by == "agent" and result.due == datetime(2026, 11, 21, 10, 0)


def test_an_offer_to_have_the_team_ring_accepted_is_a_promise() -> None:
    result = analyse_callback(_call(
        ("agent", "Shall I get our onboarding team to ring you Monday at eleven and walk you through it?"),
        ("customer", "Yes please, that'd be great.")), FRIDAY_10_15)
    assert result.promised and result.by == "agent" and result.due == datetime(2026, 11, 23, 11, 0)


def test_a_relatives_call_with_words_in_between_is_the_customers_promise() -> None:
    result = analyse_callback(_call(
        ("agent", "Bugün kayıt yapalım mı?"),
        ("customer", "Yok, şimdilik fiyat bakıyoruz. Eşim sizi yarın sabah arar, ona göre karar veririz.")),
        FRIDAY_10_15)
    assert result.promised and result.by == "customer" and result.due == datetime(2026, 11, 21, 10, 0)


def test_a_technicians_call_before_a_visit_booked_for_eight() -> None:
    result = analyse_callback(_call(
        ("agent", "You got it, you're on for eight tomorrow. Your tech will give you a call about thirty minutes "
                  "before he gets there."), ("customer", "Great.")), FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 21, 7, 30)


def test_a_technicians_call_before_a_visit_agreed_several_turns_earlier() -> None:
    result = analyse_callback(_call(
        ("agent", "I've got Friday morning at ten with Ignatius, he's our washer guy. Would that work?"),
        ("customer", "Friday at ten, perfect, I work from home Fridays."),
        ("agent", "Great. Can I get your name and the address?"),
        ("customer", "Rosa Delgado, 2291 Pecan Hollow Drive."),
        ("agent", "Got it. Ignatius will give you a call about thirty minutes before he gets there."),
        ("customer", "Oh, that's great.")), FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 27, 9, 30)  # the next Friday, 10:00 less 30 min


def test_a_customer_asking_to_ring_back_at_a_time_the_agent_accepts_is_the_customers_promise() -> None:
    result = analyse_callback(_call(
        ("customer", "I just need to look at my budget first. Not right now. Can I give you a ring tomorrow at "
                     "half two? I'm on my break then."),
        ("agent", "Of course, that's no problem. Tomorrow at half two."),
        ("customer", "Perfect.")), FRIDAY_10_15)
    assert result.promised and result.by == "customer" and result.due == datetime(2026, 11, 21, 14, 30)


def test_a_technicians_call_heard_without_its_article_is_still_a_promise() -> None:
    # As Whisper base wrote set D's "he'll give you a ring about half an hour before he gets there"
    result = analyse_callback(_call(
        ("agent", "Okay, you're down for Thursday at 9. Your tech will be Dale, and he'll give you ring about "
                  "half an hour before he gets there."), ("customer", "Perfect.")), FRIDAY_10_15)
    assert result.promised and result.by == "agent" and result.due == datetime(2026, 11, 26, 8, 30)


def test_a_promise_is_not_taken_for_a_maybe_because_whisper_wrote_in_case() -> None:
    # "What I'll do is chase the network team myself and call you back before five today", as Whisper wrote it
    result = analyse_callback(_call(("agent", "What I'll do in case the network team myself and call you back "
                                              "before five today with a repair slot. Does that work?"),
                                    ("customer", "Fine, I'll hold you to that.")), FRIDAY_10_15)
    assert result.promised and result.by != "customer"  # the company's side (the agent chasing the team)
    maybe = analyse_callback(_call(("agent", "Just in case anything changes we can call you back."),), FRIDAY_10_15)
    assert not maybe.promised


def test_the_first_day_said_after_the_promise_wins() -> None:
    result = analyse_callback(_call(("agent", "The technician will give you a ring around seven tomorrow evening to "
                                              "narrow down the arrival window for Wednesday.")), FRIDAY_10_15)
    assert result.due == datetime(2026, 11, 21, 19, 0)


def test_never_remembering_something_is_no_report_of_a_missed_call() -> None:
    said = "My wife's the one with the code, she'll call you tomorrow afternoon with it, I never remember it."
    result = analyse_callback(_call(("agent", "Saturday at ten then."), ("customer", said)), FRIDAY_10_15)
    assert result.promised and result.by == "customer" and result.due == datetime(2026, 11, 21, 15, 0)


def test_a_turkish_promise_takes_the_time_said_before_its_verb_not_after() -> None:
    turns = _turns(("agent", "Ameliyattan önce çarşamba öğleden sonra biz sizi arayacağız, gece yarısından sonra mama "
                             "vermemeniz gerekecek."), ("customer", "Tamam, teşekkürler."))
    assert analyse_callback(turns, FRIDAY_10_15).due == datetime(2026, 11, 25, 15, 0)


def test_turkish_i_will_call_agreed_is_a_promise_and_a_condition_is_not() -> None:
    asked = _turns(("customer", "Şu an toplantıdayım. Akşam yedi gibi arayabilir misiniz?"),
                   ("agent", "Tabii, akşam yedi gibi ararım o zaman."))
    result = analyse_callback(asked, FRIDAY_10_15)
    assert result.promised and result.by == "agent" and result.due == datetime(2026, 11, 20, 19, 0)
    present = _turns(("customer", "Akşam yedi gibi arayabilir misiniz?"),
                     ("agent", "Tabii ki. Akşam yedi gibi sizi tekrar arıyorum o zaman."))
    assert analyse_callback(present, FRIDAY_10_15).due == datetime(2026, 11, 20, 19, 0)
    team = _turns(("agent", "Özetle: iade hesabınıza geçti, yarın öğleden sonra ekip arayacak."),
                  ("customer", "Tamam."))
    result = analyse_callback(team, FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 21, 15, 0)
    conditional = _turns(("agent", "Faturanızla markanın çağrı merkezini arayın."),
                         ("customer", "Tamam, onları arayayım. Olmazsa size dönerim."))
    assert analyse_callback(conditional, FRIDAY_10_15).promised is False


def test_a_confirmation_after_a_timed_promise_does_not_take_another_date_from_its_turn() -> None:
    turns = _turns(("agent", "You're booked for Saturday, March thirteenth. Our event planner, Jo, will call you on "
                             "the first of March to go over the setup."),
                   ("customer", "Wonderful. Will she call me at this number?"),
                   ("agent", "Yes, this one. Anything else I can help you with today?"))
    assert analyse_callback(turns, FRIDAY_10_15).due == datetime(2027, 3, 1, 10, 0)


def test_a_lead_time_is_measured_from_the_visits_clock_time_not_a_nearer_bare_day() -> None:
    turns = _turns(("agent", "The earliest install is Saturday at nine in the morning. Does that work?"),
                   ("customer", "Saturday at nine works."),
                   ("customer", "Use my wife's cell, actually. She'll be home Saturday."),
                   ("agent", "Got it. The technician will ring that number thirty minutes before arriving."))
    assert analyse_callback(turns, FRIDAY_10_15).due == datetime(2026, 11, 21, 8, 30)


def test_a_call_tied_to_an_event_takes_no_time_from_the_talk_around_it() -> None:
    # The rubric: no time at all -> no due time; "tonight" belongs to the caller's medicine, not to the call.
    result = analyse_callback(_call(
        ("customer", "What about my meds? I need them tonight."),
        ("agent", "Get an emergency supply at a pharmacy, that's reimbursed in full."),
        ("customer", "Okay, that helps."),
        ("agent", "Someone from our baggage team will call you once the bag is on its way to the hotel.")),
        FRIDAY_10_15)
    assert result.promised and result.due is None
    # ...while a time in the promise's own sentence still counts.
    timed = analyse_callback(_call(
        ("agent", "I'll ring you back in about twenty minutes once I've spoken to the metering team."),
        ("customer", "Fine, I'm in all morning.")), FRIDAY_10_15)
    assert timed.due == datetime(2026, 11, 20, 10, 35)


def test_a_colleague_asked_to_give_a_ring_and_an_accepted_should_i_give_you_a_call_are_promises() -> None:
    team = analyse_callback(_call(
        ("agent", "Lovely. I'll get our onboarding team to give you a ring, they'll sort the checks."),
        ("customer", "Great, thanks.")), FRIDAY_10_15)
    assert team.promised and team.due is None
    offer = analyse_callback(_call(
        ("agent", "Should I give you a call on the twenty-fifth, once you've had a chance to compare?"),
        ("customer", "Yeah, sure, the twenty-fifth's fine.")), FRIDAY_10_15)
    assert offer.promised and offer.by == "agent" and offer.due == datetime(2026, 11, 25, 10, 0)


def test_a_visit_call_said_with_its_own_clock_time_is_due_then_in_the_visits_half_of_the_day() -> None:
    result = analyse_callback(_call(
        ("agent", "Our first available is tomorrow morning at eight."),
        ("customer", "That works."),
        ("agent", "Luis will give you a ring about half an hour before he gets there tomorrow, so around seven "
                  "thirty.")), FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 21, 7, 30)


def test_a_hedge_about_something_else_in_the_sentence_leaves_the_promise() -> None:
    result = analyse_callback(_call(
        ("agent", "Fiyatlar bu kadar."),
        ("customer", "Tamam. Yarın saat üçte ben sizi ararım, muayene için gün alırız belki.")), FRIDAY_10_15)
    assert result.promised and result.by == "customer" and result.due == datetime(2026, 11, 21, 15, 0)
    # ...while a hedge on the call itself is still a maybe
    assert not analyse_callback(_call(("customer", "Belki yarın sizi ararım.")), FRIDAY_10_15).promised


def test_what_the_caller_says_they_were_told_and_the_closing_courtesy_make_no_promise_or_time() -> None:
    told = analyse_callback(_call(
        ("customer", "Dün aradım. Öğleden sonra teknisyen arayacak dediler, akşama kadar bekledim!"),
        ("agent", "Kimsenin arayacağına söz veremem ama teknisyen öğlene kadar gelecek.")), FRIDAY_10_15)
    assert not told.promised
    untimed = analyse_callback(_call(
        ("agent", "Great. I'll pass it on, and someone from our loans team will give you a call."),
        ("customer", "Sounds good."),
        ("agent", "Is there anything else I can help you with this evening?")), FRIDAY_10_15)
    assert untimed.promised and untimed.due is None


def test_a_visit_said_as_an_hour_oclock_and_a_weekday_with_its_clock_time_give_the_lead_call_time() -> None:
    # Set M (after its first score): "nine o'clock" needs no "at"; the weekday said with its clock time is the
    # visit, not the "tomorrow" said before it ("there's no team tomorrow").
    british = analyse_callback(_call(
        ("agent", "I've got Callum free first thing tomorrow, nine o'clock. Would that work?"),
        ("customer", "Nine tomorrow, yes. Perfect."),
        ("agent", "Callum will give you a ring about twenty minutes before he gets to you.")), FRIDAY_10_15)
    assert british.due == datetime(2026, 11, 21, 8, 40)
    turkish = analyse_callback(_call(
        ("customer", "Çarşamba... Yarın olmuyor mu? Neyse, tamam, çarşamba onda evdeyim zaten."),
        ("agent", "Yarın o bölgede ekip yok, kusura bakmayın. Çarşamba saat on olarak yazıyorum. Teknisyen "
                  "arkadaşımız gelmeden yarım saat önce sizi arayacak.")), FRIDAY_10_15)
    assert turkish.due == datetime(2026, 11, 25, 9, 30)  # Wednesday 10:00 less half an hour
    # a bare "tomorrow ... Wednesday" with no clock time by the weekday keeps tomorrow
    assert resolve_due("I'll ring you tomorrow evening to narrow down the window for Wednesday",
                       FRIDAY_10_15) == resolve_due("I'll ring you tomorrow evening", FRIDAY_10_15)


def test_a_bare_day_borrowed_from_a_nearby_turn_takes_the_clock_time_the_caller_asked_for() -> None:
    # Whisper split the agent's "Absolutely. Thursday at five it is, I'll give you a call then." (set M, 16 kHz)
    result = analyse_callback(_call(
        ("customer", "Not now, man, can you call me Thursday at 5? I'm off at 430."),
        ("agent", "Absolutely, no problem."),
        ("agent", "I'll give you a call and talk"),
        ("customer", "All right, Thursday.")), FRIDAY_10_15)
    assert result.promised and result.due == datetime(2026, 11, 26, 17, 0)
