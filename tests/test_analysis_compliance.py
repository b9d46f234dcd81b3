"""Compliance checklist rules: required and prohibited phrases, order, hang-ups, PII read back."""

from __future__ import annotations

import pytest

from pipeline.analysis.compliance import CallFacts, Checklist, check_call
from pipeline.analysis.text import TurnView
from pipeline.analysis_schema import PiiSpan
from pipeline.settings import AnalysisSettings


@pytest.fixture(scope="module")
def checklist() -> Checklist:
    return Checklist.load(AnalysisSettings().compliance_file)


def _turns(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=role, text=text, start=i * 4.0, end=i * 4.0 + 3) for i, (role, text) in
            enumerate(lines)]


def statuses(checklist: Checklist, turns: list[TurnView], **facts: object) -> dict[str, str]:
    return {r.id: r.status for r in check_call(checklist, CallFacts(turns=turns, **facts))}  # type: ignore[arg-type]


GOOD_OPENING = ("agent", "Good morning, thank you for calling Brightline Home Services, my name is Sarah. "
                         "This call is recorded for quality and training. How can I help?")
GOOD_CLOSING = ("agent", "Is there anything else I can help you with? ... Thanks for calling, have a great day.")


def test_a_textbook_call_passes_every_item(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "My tap is leaking, can you send a plumber?"),
                                        ("agent", "Of course, tomorrow at nine."), GOOD_CLOSING))
    assert result == {"greeting": "pass", "identity_verification": "not_applicable", "disclosure": "pass",
                      "prohibited_phrases": "pass", "further_help": "pass", "closing": "pass"}


def test_greeting_without_the_agents_name_fails_with_the_reason(checklist: Checklist) -> None:
    results = check_call(checklist, CallFacts(turns=_turns(
        ("agent", "Hello, thanks for calling Brightline Home Services, how can I help?"),
        ("customer", "Hi, my boiler is broken."))))
    greeting = next(r for r in results if r.id == "greeting")
    assert greeting.status == "fail" and "agent's name" in greeting.reason
    assert greeting.evidence[0].turn == 0


def test_greeting_works_for_companies_it_was_never_told_about(checklist: Checklist) -> None:
    opening = ("agent", "Good afternoon, Acme Drains, you're through to Priya. How can I help?")
    assert statuses(checklist, _turns(opening, ("customer", "My drain is blocked.")))["greeting"] == "pass"
    turkish = ("agent", "Evim Usta, iyi günler, ben Ayşe. Size nasıl yardımcı olabilirim?")
    assert statuses(checklist, _turns(turkish, ("customer", "Kombim arızalı.")))["greeting"] == "pass"


def test_missing_disclosure_and_further_help_fail(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        ("agent", "Hello, Brightline Home Services, Tom speaking, how can I help?"),
        ("customer", "I need a cleaner on Friday."), ("agent", "Booked for Friday. Bye now.")))
    # A bare "bye" is no courteous sign-off (the rubric: thanks and/or well-wishing).
    assert result["disclosure"] == "fail" and result["further_help"] == "fail" and result["closing"] == "fail"


def test_prohibited_phrase_by_the_agent_fails_but_the_same_words_from_the_customer_do_not(
    checklist: Checklist,
) -> None:
    rude = statuses(checklist, _turns(GOOD_OPENING, ("customer", "You charged me twice!"),
                                      ("agent", "Calm down, that's not my problem."), GOOD_CLOSING))
    assert rude["prohibited_phrases"] == "fail"
    polite = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Calm down? This is ridiculous!"),
                                        ("agent", "I understand, I'm sorry."), GOOD_CLOSING))
    assert polite["prohibited_phrases"] == "pass"


def _identity(checklist: Checklist, *lines: tuple[str, str], **facts: object) -> str:
    return statuses(checklist, _turns(GOOD_OPENING, *lines), **facts)["identity_verification"]


def test_account_details_after_two_identifiers_pass(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "I'm on the basic fibre plan and want something faster."),
                     ("agent", "Before I go into your account, can I take your full name and date of birth?"),
                     ("customer", "Daniel Okafor, fourteenth of June, nineteen eighty-six."),
                     ("agent", "Thanks, you're verified. So you're on Fibre Essential at twenty-six pounds a month.")
                     ) == "pass"


def test_account_details_after_one_identifier_fail(checklist: Checklist) -> None:
    # The rubric: a single identifier is a failure; a booking reference is not one (it is on every letter).
    assert _identity(checklist, ("customer", "My bill is far too high."), ("agent", "Can I take your name?"),
                     ("customer", "Gary Tunstall."),
                     ("agent", "Thanks Gary. So your balance is three hundred and eighty-two pounds.")) == "fail"
    assert _identity(checklist, ("customer", "I was charged twice."),
                     ("agent", "Can you confirm your full name and booking reference please?"),
                     ("customer", "Mark Ellis, K L four four nine."),
                     ("agent", "Thanks, I can see your booking from Monday.")) == "fail"


def test_a_postcode_or_address_counts_as_the_second_identifier(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "I was charged twice."),
                     ("agent", "Can you confirm your full name and postcode please?"),
                     ("customer", "Mark Ellis, M14 5RT."),
                     ("agent", "Thanks, I can see your booking from Monday.")) == "pass"


def test_a_caller_who_answers_with_their_name_or_says_speaking_has_given_it(checklist: Checklist) -> None:
    outbound = ("agent", "Hi, this is Denise from Harbor Point Credit Union. This call may be recorded.")
    assert statuses(checklist, _turns(("customer", "Hello?"),
                                      ("agent", "Hi, this is Denise from Harbor Point Credit Union. This call may be "
                                                "recorded. May I speak with Thomas Whitaker?"),
                                      ("customer", "Speaking."),
                                      ("agent", "Before I go into your loan, could you confirm your birth date?"),
                                      ("customer", "March ninth, eighty-four."),
                                      ("agent", "Thank you. Your auto loan is approved at five point seven nine."),
                                      GOOD_CLOSING))["identity_verification"] == "pass"
    assert statuses(checklist, _turns(("customer", "Hello, Graham Pike."), outbound,
                                      ("agent", "Could you confirm your date of birth?"),
                                      ("customer", "Seventh of January, sixty-eight."),
                                      ("agent", "Thanks. So your policy is the comprehensive cover, renewing in "
                                                "November."),
                                      GOOD_CLOSING))["identity_verification"] == "pass"
    # Turkish: the account holder's "adı soyadı" asked of the caller is the name.
    assert _identity(checklist, ("customer", "Sabah eşimle konuşmuşsunuz, aşı için."),
                     ("agent", "Bir doğrulama yapayım: kayıtlı kişinin adı soyadı ve doğum tarihi?"),
                     ("customer", "Tarık Kara, yirmi üç mart seksen bir."),
                     ("agent", "Teşekkürler. Perşembe için beş buçuğu sizin adınıza tutmuştum.")) == "pass"


def test_empathy_and_public_places_are_no_record_on_screen(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "Your ad said get your tickets. I want plane tickets."),
                     ("agent", "Ha, I can see the confusion. For flights you'd want the airline directly.")
                     ) == "not_applicable"
    assert _identity(checklist, ("customer", "I'll take the sofa to the tip myself."),
                     ("agent", "That's fine, the recycling centre on Mill Road takes them for free.")
                     ) == "not_applicable"
    assert _identity(checklist, ("customer", "Is the silver one still there?"),
                     ("agent", "That's the one, the twenty twenty-two TRD Off-Road, thirty-one thousand miles.")
                     ) == "not_applicable"


def test_an_address_the_caller_never_said_is_read_from_their_record(checklist: Checklist) -> None:
    # The rubric lists "an address on file": the agent naming a street the caller has not said discloses it.
    assert _identity(checklist, ("customer", "Morning, the name's Paul Brennan, I want two more sensors."),
                     ("agent", "Lovely, I've got you here, Mr Brennan, forty-one Harcourt Avenue, the Guardian "
                               "package.")) == "fail"
    assert _identity(checklist, ("customer", "Merhaba, siparişim on gündür gelmedi."), ("agent", "Adınız?"),
                     ("customer", "Sibel Korkmaz."),
                     ("agent", "Sibel Korkmaz, Barbaros Mahallesi, Lale Sokak on dört. Kargoda bekliyor.")) == "fail"
    # The caller's own address read back, the company's premises and a Turkish "street" in passing are none.
    assert _identity(checklist, ("customer", "I'd like a quote for a deep clean at 12 Mill Lane."),
                     ("agent", "Twelve Mill Lane. Our office on King Street opens at nine.")) == "not_applicable"
    assert _identity(checklist, ("customer", "Kargo gelmedi, kapıda bekledim."),
                     ("agent", "Kurye bazen sokak kapısını bulamıyor, iki gün sonra gelir.")) == "not_applicable"


def test_requests_said_as_a_need_and_a_callback_time_are_read_as_such(checklist: Checklist) -> None:
    # "I'll just need ... on your account" asks for identifiers; it discloses nothing.
    assert _identity(checklist, ("customer", "Uh, yeah, who's this?"),
                     ("agent", "I'll just need to confirm your full name and the last four digits of the phone "
                               "number on your account."),
                     ("customer", "Chidi Okafor, and it's oh one three eight."),
                     ("agent", "Thanks. So, I see you're on our Basic plan, twelve ninety-nine.")) == "pass"
    # The day belongs to the call ("ring today"), not to the bill: no account detail read out.
    assert _identity(checklist, ("customer", "Oh, hello."),
                     ("agent", "I said I'd ring today about your bill. Is now a good time?")) == "not_applicable"
    # A policy's end read out before any identifier ("poliçeniz ay sonunda bitiyor") is a disclosure.
    assert _identity(checklist, ("customer", "Evet, benim."),
                     ("agent", "Kasko yenilemeniz için aradım, poliçeniz ay sonunda bitiyor.")) == "fail"


def test_account_details_before_the_identifiers_fail(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "I keep running out of data."),
                     ("agent", "Right, you're on the ten-gig SIM at twelve pounds a month. Can I take your name "
                               "and date of birth to look at what else we can do?"),
                     ("customer", "Rhys Evans, second of May, eighty-five.")) == "fail"
    assert _identity(checklist, ("customer", "I was charged twice."),
                     ("agent", "I can see your account, two payments of 120 pounds.")) == "fail"


def test_an_outbound_name_check_is_one_identifier(checklist: Checklist) -> None:
    reminder = [("agent", "Hi, this is Rashida from Voltaro Heating, this call may be recorded. Is this Mr. Brennan?"),
                ("customer", "Speaking."),
                ("agent", "I'm calling to remind you about your furnace tune-up tomorrow at eight a.m., the "
                          "one-forty-nine visit.")]
    assert statuses(checklist, _turns(*reminder))["identity_verification"] == "fail"
    checked = [reminder[0], reminder[1], ("agent", "For security, could you confirm your date of birth?"),
               ("customer", "Seventeenth of January, 1975."),
               ("agent", "Thank you. So that's Wednesday at half eight, and the quote of eight thousand four hundred.")]
    assert statuses(checklist, _turns(*checked))["identity_verification"] == "pass"


def test_new_sales_and_general_questions_are_not_applicable(checklist: Checklist) -> None:
    # Taking a new customer's name and e-mail to make a booking discloses no existing record.
    assert _identity(checklist, ("customer", "I'd like a deep clean on Friday, three bedrooms."),
                     ("agent", "That's two hundred and sixty pounds. Can I take your name and email?"),
                     ("customer", "Ellie Martin, ellie at gmail dot com."),
                     ("agent", "Thanks Ellie, I've booked you in. Your booking is Friday at nine.")) == "not_applicable"
    assert _identity(checklist, ("customer", "How much is a boiler service?"),
                     ("agent", "Sixty-five pounds, and that covers the first hour.")) == "not_applicable"


def test_a_security_check_the_caller_does_not_answer_verifies_nothing(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "Hello?"),
                     ("agent", "For security, can I take your national ID number?"),
                     ("customer", "I'm going into a meeting, can you call me tomorrow morning?"),
                     ("agent", "Of course, we'll call you tomorrow morning.")) == "not_applicable"


def test_identity_in_turkish(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "İnternetim sürekli kopuyor."),
                     ("agent", "Hattınızı görebilmem için adınız soyadınız ve TC kimlik numaranızı alabilir miyim?"),
                     ("customer", "Gülay Erdem, on yedi iki yüz seksen dört altı yüz on dokuz yedi yüz otuz."),
                     ("agent", "Teşekkürler, doğrulama tamam. Fiber hattınızı görüyorum, yüz megabit paket.")) == "pass"
    assert _identity(checklist, ("customer", "Evet, benim."),
                     ("agent", "Nilay Hanım, taşınmanız için arıyorum. Kaporanız üç bin yedi yüz lira yatmış "
                               "görünüyor.")) == "fail"


def test_identity_on_asr_words_numbers_as_words_and_no_punctuation(checklist: Checklist) -> None:
    asr = [("customer", "hi i filed a claim five weeks ago"),
           ("agent", "i will need your date of birth and the last four of your social security number"),
           ("customer", "february second nineteen sixty six seven seven oh two"),
           ("agent", "okay the claim is in review with the adjuster since march eighteenth")]
    assert _identity(checklist, *asr) == "pass"
    # One identifier, and the deciding words heard with doubt: a person should look, not a failure.
    unsure = [TurnView(index=0, role="agent", text=GOOD_OPENING[1], start=0, end=3),
              TurnView(index=1, role="customer", text="my bill is wrong", start=4, end=6),
              TurnView(index=2, role="agent", text="can i take your name", start=7, end=8, confidence=0.55),
              TurnView(index=3, role="customer", text="gary tunstall", start=9, end=10),
              TurnView(index=4, role="agent", text="right your balance is three hundred and eighty two pounds",
                       start=11, end=14, confidence=0.6)]
    assert statuses(checklist, unsure)["identity_verification"] == "needs_review"


def test_closing_items_are_not_applicable_when_the_call_drops(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "I want a refund."),
                                        ("agent", "You'll have to email them."),
                                        ("customer", "It's, hang on, my —")))
    assert result["further_help"] == "not_applicable" and result["closing"] == "not_applicable"
    left = statuses(checklist, _turns(GOOD_OPENING, ("customer", "I want a refund."),
                                      ("agent", "You'll have to email them."),
                                      ("customer", "Forget it, I'll go to my bank. Bye.")))
    # The customer hanging up on their leaving words, the agent never answering, is a call that ended before
    # the closing (a rubric-only labeller's reading, set B): not applicable.
    assert left["further_help"] == "not_applicable" and left["closing"] == "not_applicable"
    answered = statuses(checklist, _turns(GOOD_OPENING, ("customer", "I want a refund."),
                                          ("agent", "You'll have to email them."),
                                          ("customer", "Forget it, I'll go to my bank."), ("agent", "Okay.")))
    assert answered["further_help"] == "fail" and answered["closing"] == "fail"  # the agent still spoke


def test_a_normal_goodbye_from_the_customer_is_not_a_hang_up(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Call me Monday please."),
                                        ("agent", "Sure, Monday then. Have a good weekend."),
                                        ("customer", "You too, bye.")))
    assert result["further_help"] == "fail" and result["closing"] == "pass"


def test_the_greeting_is_never_counted_as_the_closing(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Um, it's about my boiler."),
                                        ("agent", "Take your time. What's the problem?")))
    assert result["closing"] == "fail"


def test_empty_call_checks_only_what_the_agent_owes_a_silent_line(checklist: Checklist) -> None:
    # The rubric: greeting and prohibited phrases are never "not applicable"; the rest is on an empty call.
    owed = {"greeting", "prohibited_phrases"}
    result = statuses(checklist, _turns(GOOD_OPENING, ("agent", "Hello? I can't hear you.")), empty=True)
    assert {k: result[k] for k in owed} == {"greeting": "pass", "prohibited_phrases": "pass"}
    assert {v for k, v in result.items() if k not in owed} == {"not_applicable"}
    silent = statuses(checklist, _turns(("agent", "Hello?"), ("agent", "Hello?")), empty=True)
    assert silent["greeting"] == "fail" and silent["disclosure"] == "not_applicable"


def test_agent_reading_back_a_card_number_fails(checklist: Checklist) -> None:
    turns = _turns(GOOD_OPENING, ("customer", "Card number please?"),
                   ("agent", "So that's [CARD_NUMBER], correct?"), GOOD_CLOSING)
    span = PiiSpan(kind="card_number", turn=2, char_start=10, char_end=29)
    assert "pii_read_back" not in statuses(checklist, turns, pii=[span])  # not in the rubric: off by default
    enabled = Checklist.load(AnalysisSettings().compliance_file)
    next(item for item in enabled.items if item.id == "pii_read_back").enabled = True
    assert statuses(enabled, turns, pii=[span])["pii_read_back"] == "fail"


def test_known_company_and_agent_names_from_metadata_are_used(checklist: Checklist) -> None:
    opening = ("agent", "hello brightline sarah here how can i help")  # ASR without capitals or punctuation
    assert statuses(checklist, _turns(opening), company_names=["Brightline"], agent_names=["Sarah"])[
        "greeting"] == "pass"


def test_a_customer_who_has_to_go_still_is_owed_further_help(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING,
                                        ("customer", "Hi, it's about... oh, the doorbell, I'll have to call you back."),
                                        ("agent", "No problem at all, speak to you later.")))
    # The agent still answered: further help was owed (rubric); the courteous reply closes the call.
    assert result["further_help"] == "fail"


def test_a_reply_opening_with_no_declines_an_offered_callback() -> None:
    from datetime import datetime

    from pipeline.analysis.callbacks import analyse_callback

    turns = _turns(("agent", "Would you like us to call you with a written quote?"),
                   ("customer", "No, I'm fine thanks, I'll look online."))
    assert not analyse_callback(turns, datetime(2026, 11, 18, 13, 0)).promised


@pytest.mark.parametrize(
    ("opening", "expected"),
    [
        # Whisper output: full stops inside the opening, a garbled name after the company.
        ("Good afternoon. Call a pro. Megan speaking. Calls are recorded. How can I help?", "pass"),
        ("Hi, Fixed Ride Home Services. So he's speaking. How can I help?", "pass"),
        # No company at all: a capitalised word starting a later sentence is not one.
        ("Hello, Raj speaking, calls are recorded. How can I help?", "fail"),
    ],
)
def test_greeting_check_survives_asr_punctuation_but_still_needs_a_company(
    checklist: Checklist, opening: str, expected: str
) -> None:
    turns = _turns(("agent", opening), ("customer", "My boiler has stopped."),
                   ("agent", "Do you know if it came with a guarantee? New boilers usually have five years."))
    assert statuses(checklist, turns)["greeting"] == expected


@pytest.mark.parametrize(
    ("opening", "expected"),
    [
        ("ProNest Home Services, Gary speaking. Calls are recorded.", "pass"),  # company + name is a greeting
        ("Good afternoon, Move and Mend Home Services, Ryan here. How can I help?", "pass"),
        ("Yeah, Brightline, Gary here, calls are recorded.", "fail"),  # a casual opener is not
    ],
)
def test_greeting_is_company_and_own_name_without_a_casual_opener(
    checklist: Checklist, opening: str, expected: str
) -> None:
    assert statuses(checklist, _turns(("agent", opening)))["greeting"] == expected


def test_checklist_can_require_a_greeting_word(checklist: Checklist) -> None:
    from dataclasses import replace

    strict = replace(checklist, items=[replace(i, options={**i.options, "require_greeting_word": True})
                                       if i.id == "greeting" else i for i in checklist.items])
    assert statuses(strict, _turns(("agent", "ProNest Home Services, Gary speaking.")))["greeting"] == "fail"


def test_asking_for_a_reference_is_verifying_not_discussing_the_account(checklist: Checklist) -> None:
    redirect = _turns(GOOD_OPENING, ("customer", "Who fits my new dishwasher?"),
                      ("agent", "Call the retailer's customer services with the order number and they'll book it."))
    assert statuses(checklist, redirect)["identity_verification"] == "not_applicable"
    checked = _turns(GOOD_OPENING, ("customer", "Your decorator ruined my carpet."),
                     ("agent", "I'm sorry. Can I take your booking reference, your full name and the phone number "
                               "on the booking?"),
                     ("customer", "HH-40721, Gillian Parkes, 07700 900412."),
                     ("agent", "Thanks, that matches. I can see Lee did the hallway on Friday."))
    assert statuses(checklist, checked)["identity_verification"] == "pass"


def test_greeting_hears_metadata_names_the_transcriber_split_or_misspelt(checklist: Checklist) -> None:
    opening = ("agent", "Thanks for calling North Field broad band, this is Pria, calls are recorded.")
    result = statuses(checklist, _turns(opening, ("customer", "Hi.")),
                      company_names=["Northfield Broadband"], agent_names=["Priya"])
    assert result["greeting"] == "pass"


def test_greeting_without_the_known_company_name_fails_on_sure_words(checklist: Checklist) -> None:
    opening = ("agent", "Hi, you're through to Sam, how can I help?")
    result = statuses(checklist, _turns(opening, ("customer", "Hi.")), company_names=["Northfield Broadband"],
                      agent_names=["Sam"])
    assert result["greeting"] == "fail"


def test_a_failure_on_unsure_words_needs_review_instead(checklist: Checklist) -> None:
    garbled = TurnView(index=0, role="agent", text="Thanks for calling Nor feel Brubent, this is Pria.", start=0,
                       end=3, confidence=0.55)
    results = check_call(checklist, CallFacts(turns=[garbled, TurnView(1, "customer", "Hi.", 4, 5)],
                                              company_names=["Northfield Broadband"], agent_names=["Priya"]))
    greeting = next(r for r in results if r.id == "greeting")
    assert greeting.status == "needs_review" and "confidence" in greeting.reason


def test_a_missing_notice_on_unsure_words_fails_unless_something_like_it_was_heard(checklist: Checklist) -> None:
    def disclosure(opening: str, confidence: float) -> str:
        turns = [TurnView(index=0, role="agent", text=opening, start=0, end=4, confidence=confidence),
                 TurnView(index=1, role="customer", text="Hi, yeah.", start=5, end=6)]
        return next(r for r in check_call(checklist, CallFacts(turns=turns)) if r.id == "disclosure").status

    # Nothing like a recording notice in fairly unsure words: the notice was not said.
    assert disclosure("Parcelwyn customer services, you're speaking to Oluwaseun, how can I help?", 0.6) == "fail"
    # "recorded" misheard as "re-coded": it may have been said.
    assert disclosure("Parcelwyn, this is Dan, this call may be re-coded. How can I help?", 0.6) == (
        "needs_review")
    # Words this unsure are noise to the transcriber: nothing can be concluded.
    assert disclosure("Parsel win custom service your speaking to", 0.3) == "needs_review"
    # Sure words without the notice fail as before.
    assert disclosure("Parcelwyn customer services, you're speaking to Oluwaseun, how can I help?", 0.95) == "fail"


@pytest.mark.parametrize(
    "said",
    ["Calm down, sir.", "Like I said, it's Tuesday.", "As I already said, no.", "There's nothing I can do.",
     "Obviously you need to plug it in.", "You people never read the terms.", "Lütfen sakin olun.",
     "Bu benim sorunum değil.", "Söyledim ya, yarın."],
)
def test_the_rubrics_prohibited_phrases_fail_when_the_agent_says_them(checklist: Checklist, said: str) -> None:
    assert statuses(checklist, _turns(GOOD_OPENING, ("customer", "Hm."), ("agent", said), GOOD_CLOSING))[
        "prohibited_phrases"] == "fail"


# Whisper output of espeak voices on the rubric sets (B-001): words split, merged or misheard.
def test_further_help_survives_words_the_transcriber_split(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        GOOD_OPENING, ("customer", "My washing machine is leaking."),
        ("agent", "Lovely, that's on its way now. In any thing else, I can't help with today."),
        ("customer", "No, that's brilliant."),
        ("agent", "No worry at all, cheering for calling and good luck with the machine.")))
    assert result["further_help"] == "pass" and result["closing"] == "pass"


def test_a_recording_notice_heard_wrong_still_passes_on_its_purpose(checklist: Checklist) -> None:
    opening = ("agent", "Good morning, you're through to Tradora, my name is Eva, just so you know, call me COVID "
                        "for training. How can I help?")
    assert statuses(checklist, _turns(opening, ("customer", "My machine leaks.")))["disclosure"] == "pass"


def test_a_closing_cut_in_two_by_the_transcriber_is_one_last_turn(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        GOOD_OPENING, ("customer", "My tap is leaking, can you send a plumber?"),
        ("agent", "Of course, tomorrow at nine. Anything else?"), ("customer", "No, that's all."),
        ("agent", "Thanks so much for calling, have a lovely day."), ("agent", "Bye now.")))
    assert result["closing"] == "pass"


def test_a_recording_notice_after_a_cut_opening_is_still_within_the_first_two_turns(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        ("agent", "Good afternoon, Merrow and Pike, Rosalind speaking."), ("agent", "How can I help?"),
        ("customer", "Hi, it's about my card."), ("agent", "Sure, and this call is recorded for training.")))
    assert result["disclosure"] == "pass"


def test_a_call_ending_on_the_agent_checking_a_silent_line_dropped(checklist: Checklist) -> None:
    unfinished = "Hey, so my neighbor said y'all could do something with the dish thing, and I need to know if—"
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", unfinished),
                                        ("agent", "Sure, are you looking to move the dish, or remove it, or...? Sir?")))
    assert result["further_help"] == "not_applicable" and result["closing"] == "not_applicable"
    turkish = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Annemin evindeki şeyle ilgili arıyordum, acaba"),
                                         ("agent", "Annenizin evindeki internet hattıyla mı ilgili? Alo? Efendim?")))
    assert turkish["closing"] == "not_applicable"
    # A sign-off that ends on "sir" is no line check
    signed = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Thanks."), ("agent", "Bye then, sir.")))
    assert signed["closing"] == "fail"
    # Whisper left the question marks out of "Sir? ... Hello?" (set L at 16 kHz): the words alone are the check
    unpunctuated = statuses(checklist, _turns(GOOD_OPENING, ("customer", "No way. Forget it."),
                                              ("agent", "Sir, I'd really not recommend."), ("agent", "Sir. Hello.")))
    assert unpunctuated["further_help"] == "not_applicable" and unpunctuated["closing"] == "not_applicable"


def test_an_agent_saying_the_line_went_excuses_further_help_and_the_closing(checklist: Checklist) -> None:
    for last in ("Ma'am? Hello? ... I think we got disconnected.", "Alo? Efendim? ... Hat kapandı."):
        result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Oh, hang on, that's, sorry, I have to"),
                                            ("agent", last)))
        assert result["further_help"] == "not_applicable" and result["closing"] == "not_applicable", last


def test_a_customer_bye_after_the_agents_sign_off_is_no_hang_up(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        ("agent", "Hi, this is Padma calling from Lantern Federal Credit Union. This call is recorded."),
        ("customer", "Not now, I'm driving. Call me tomorrow at 3."),
        ("agent", "Sure, I'll call you tomorrow at 3. Drive safe."), ("customer", "Yeah, yeah, bye.")))
    assert result["further_help"] == "fail" and result["closing"] == "pass"


def test_greeting_with_a_shortened_company_name_and_a_company_introduced_as_it_is(checklist: Checklist) -> None:
    opening = ("agent", "J and R Plumbing, Eamon here, calls are recorded.")
    facts = {"company_names": ["J&R Plumbing and Heating"], "agent_names": ["Eamon"]}
    assert statuses(checklist, _turns(opening, ("customer", "Hi.")), **facts)["greeting"] == "pass"
    # "it's Brightwell Solar here" names the company; the agent's own name is missing
    opening = ("agent", "Hiya, it's Brightwell Solar here, you asked about a quote. This call is recorded.")
    facts = {"company_names": ["Brightwell Solar"], "agent_names": ["Henrik"]}
    assert statuses(checklist, _turns(opening, ("customer", "Not now.")), **facts)["greeting"] == "fail"


def test_an_existing_customers_package_read_out_before_verification_fails(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(
        ("agent", "Hi, it's Chiamaka calling from Skyvane TV, this call may be recorded. Is this Terrence?"),
        ("customer", "Yeah, who's this?"),
        ("agent", "I can see you're on our Essentials package, sixty-four ninety-nine a month.")))
    assert result["identity_verification"] == "fail"


def test_an_unanswered_agent_question_after_the_customers_cut_off_words_is_a_dropped_call(
        checklist: Checklist) -> None:
    # Whisper on set B's B-007: the agent's "Hello?" into the silent line was not transcribed
    result = statuses(checklist, _turns(GOOD_OPENING, (
        "customer", "Hi, I was just wondering about nothing with the account, the one part, when it was under the..."),
        ("agent", "Is it about your overdraft or the law?")))
    assert result["further_help"] == "not_applicable" and result["closing"] == "not_applicable"


def test_an_opening_the_transcriber_could_not_read_is_reviewed_not_failed(checklist: Checklist) -> None:
    # Whisper base on a noisy 8 kHz line detected Thai for an English/Turkish opening (set B)
    garbled = TurnView(index=0, role="agent", text="ไม ่ น ่ ะ เี ิ ส ม ร ิ ย อย ่ า เค ร ล ม", start=0, end=3,
                       confidence=0.15)
    reply = TurnView(index=1, role="customer", text="Hi, my fridge is broken.", start=4, end=6)
    result = check_call(checklist, CallFacts(turns=[garbled, reply], company_names=["Ustaport"],
                                             agent_names=["Hakan"]))
    assert next(r for r in result if r.id == "greeting").status == "needs_review"


def test_an_agent_saying_it_is_a_pocket_dial_makes_the_call_empty_for_the_checklist(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "no, I said the blue one, the blue one"),
                                        ("agent", "Hello? Can you hear me?"),
                                        ("customer", "yeah, put it in the big bag"),
                                        ("agent", "I think you might have called us by accident. I'm going to end the "
                                                  "call now. Bye.")))
    assert result["disclosure"] == result["further_help"] == result["closing"] == "not_applicable"
    assert result["greeting"] == "pass"


def test_a_customers_goodbye_after_the_agents_curt_bye_is_no_dropped_call(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "My tap leaks."),
                                        ("agent", "Monday between twelve and five. That's it, bye."),
                                        ("customer", "Well, there's no need to be so short with me. Goodbye.")))
    assert result["further_help"] == "fail" and result["closing"] == "fail"


@pytest.mark.parametrize(("line", "expected"), [
    ("Well, obviously ants come back if there's something for them to eat.", "fail"),
    ("Okay, so, obviously, a CarMax number isn't the same as a trade number.", "fail"),
    ("And obviously we'll honour the price you were quoted.", "pass"),
    ("Sir, this is the Clerk's Office. Obviously we don't do dog licenses.", "fail"),
])
def test_only_a_condescending_obviously_is_prohibited(checklist: Checklist, line: str, expected: str) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Why?"), ("agent", line), GOOD_CLOSING))
    assert result["prohibited_phrases"] == expected


def test_hoping_it_gets_sorted_is_a_courteous_sign_off(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "The boiler is still broken."),
                                        ("agent", "Is there anything else I can help with?"), ("customer", "No."),
                                        ("agent", "Sorry again, I hope it's sorted soon. Bye.")))
    assert result["closing"] == "pass"


def test_on_a_transcript_without_punctuation_a_call_ending_on_the_customers_words_dropped(
        checklist: Checklist) -> None:
    opening = ("agent", "good morning brightline home services sarah speaking calls are recorded how can i help")
    cut = statuses(checklist, _turns(opening, ("customer", "hi its about the boiler its hang on my")))
    assert cut["further_help"] == "not_applicable" and cut["closing"] == "not_applicable"
    checking = statuses(checklist, _turns(opening, ("customer", "i have got a question about the"),
                                          ("agent", "hello are you there")))
    assert checking["further_help"] == "not_applicable"
    # The customer's thanks end a finished call: the agent still owed the offer of help and the closing.
    finished = statuses(checklist, _turns(opening, ("customer", "my tap leaks"), ("agent", "monday at nine then"),
                                          ("customer", "lovely thank you")))
    assert finished["further_help"] == "fail"


@pytest.mark.parametrize("line", [
    "Oh, I see a lot of that in winter. Is the boiler over ten years old?",
    "Can you tell me about your boiler, is it over ten years old?",
    "Lovely, I can book you in for Friday at ten, that's sixty-five pounds.",
    "Sistemde arıza yok, ustamız yarın saat onda gelir.",
])
def test_a_new_customers_call_discloses_no_record(checklist: Checklist, line: str) -> None:
    assert _identity(checklist, ("customer", "My boiler makes a noise, can someone come?"), ("agent", line),
                     ("customer", "Great.")) == "not_applicable"


def test_an_identifier_given_a_reply_later_still_counts(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "I'm calling about my claim."),
                     ("agent", "Can I have your full name and date of birth, please?"),
                     ("customer", "Linda Varga. Hang on, let me think."), ("agent", "No rush."),
                     ("customer", "March ninth, nineteen seventy-one."),
                     ("agent", "Thank you. I see the claim here, filed on February eighth.")) == "pass"


def test_a_call_ending_on_the_customers_unfinished_sentence_dropped(checklist: Checklist) -> None:
    # No dash or dots: the transcript just stops on a word no finished sentence ends on.
    cut = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Yeah, hi, I'm calling about the letter you sent. "
                                                    "My daughter said I should call before I")))
    assert cut["further_help"] == "not_applicable" and cut["closing"] == "not_applicable"
    finished = statuses(checklist, _turns(GOOD_OPENING, ("customer", "I'll ring back when I've found it"),
                                          ("agent", "Okay."), ("customer", "Hold on")))
    assert finished["further_help"] == "fail"  # "hold on" ends a sentence: no dropped line


def test_an_offer_of_help_with_words_between_anything_and_help_counts_as_further_help(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Oh, is that the surgery? Wrong number, sorry."),
                                        ("agent", "Not at all. Is there anything water related I can help you with "
                                                  "while you're here?"),
                                        ("customer", "No, thanks."), ("agent", "Take care, bye now.")))
    assert result["further_help"] == "pass"


def test_a_disclosure_only_the_llm_heard_is_judged_on_the_identifiers_of_the_whole_call(checklist: Checklist) -> None:
    # "You're on the Essentials plan at thirty four ninety nine": no phrase rule fires, the LLM may.
    outbound = _turns(("agent", "Hi, it's Kayla from StreamBox TV, calls are recorded. Is that Terrence?"),
                      ("customer", "Yes."),
                      ("agent", "Lovely. You're with us on the Essentials plan at thirty four ninety nine, right?"),
                      ("customer", "I guess so."))
    assert statuses(checklist, outbound)["identity_verification"] == "not_applicable"
    assert statuses(checklist, outbound, llm_disclosure=0.3)["identity_verification"] == "not_applicable"
    assert statuses(checklist, outbound, llm_disclosure=0.6)["identity_verification"] == "needs_review"
    assert statuses(checklist, outbound, llm_disclosure=0.9)["identity_verification"] == "fail"
    verified = _turns(GOOD_OPENING, ("customer", "Hi, it's about my order."),
                      ("agent", "Can I take your email and your phone number please?"),
                      ("customer", "It's l dot moretti at outlook dot com, and two one six five five five oh one six "
                                   "four."),
                      ("agent", "Thanks. The replacement panel is still on back order."))
    result = check_call(checklist, CallFacts(turns=verified, llm_disclosure=0.9))
    item = next(r for r in result if r.id == "identity_verification")
    assert item.status == "pass" and item.source == "llm+rule"


def test_wishing_the_customer_well_is_a_courteous_sign_off(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(GOOD_OPENING, ("customer", "That's all, thanks so much."),
                                        ("agent", "Not at all, I hope your mum has a lovely birthday. Bye now.")))
    assert result["closing"] == "pass"


def test_an_opening_that_asks_what_the_agent_can_help_with_is_no_offer_of_further_help(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(("agent", "Brightline Home Services, Sarah speaking, calls are recorded. "
                                                  "Is there anything I can help you with today?"),
                                        ("customer", "My tap is leaking, can you send a plumber?"),
                                        ("agent", "Yes, Tuesday at nine. Thanks for calling, take care.")))
    assert result["further_help"] == "fail"


def test_a_full_name_the_caller_gives_unasked_counts_as_an_identifier(checklist: Checklist) -> None:
    for opening in ["Hey, good morning, this is Luis Reyes, my wife talked to you yesterday about the refi.",
                    "Günaydın Onur Bey, ben Ayşe Demir, dün konuşmuştuk."]:
        turns = _turns(GOOD_OPENING, ("customer", opening),
                       ("agent", "I just need to verify you. Can you give me your date of birth?"),
                       ("customer", "July nineteenth, eighty four."),
                       ("agent", "Thank you, you're verified. Your loan is at five point nine percent."))
        assert statuses(checklist, turns)["identity_verification"] == "pass", opening
    first_name_only = _turns(GOOD_OPENING, ("customer", "Hi, it's Sam."),
                             ("agent", "Can you give me your date of birth?"), ("customer", "July nineteenth."),
                             ("agent", "Thank you, you're verified. Your loan is at five point nine percent."))
    assert statuses(checklist, first_name_only)["identity_verification"] == "fail"


def test_a_lookup_announced_before_the_security_questions_and_a_bare_full_name_verify_in_order(
        checklist: Checklist) -> None:
    announced = _turns(GOOD_OPENING, ("customer", "Hi, my name is Leonard Cole, I'm calling about adding a line."),
                       ("agent", "Sure thing. I can see a note here. First I need to verify you. Can I get your date "
                                 "of birth?"),
                       ("customer", "May third, nineteen sixty-six."),
                       ("agent", "Thank you, you're verified. I see the note: one added line at thirty a month."))
    assert statuses(checklist, announced)["identity_verification"] == "pass"
    bare_name = _turns(GOOD_OPENING, ("customer", "Hi. Gareth Pryce. I was promised a call back yesterday."),
                       ("agent", "Can I take your date of birth?"), ("customer", "Fourteenth of November, eighty-one."),
                       ("agent", "Thanks. Right, I can see the complaint from Tuesday."))
    assert statuses(checklist, bare_name)["identity_verification"] == "pass"
    greeting_only = _turns(GOOD_OPENING, ("customer", "Hi Rafael! I was promised a call back yesterday."),
                           ("agent", "Can I take your date of birth?"), ("customer", "Fourteenth of November."),
                           ("agent", "Thanks. Right, I can see the complaint from Tuesday."))
    assert statuses(checklist, greeting_only)["identity_verification"] == "fail"


def test_a_pocket_dial_the_transcriber_misheard_still_makes_the_call_empty(checklist: Checklist) -> None:
    # Whisper base on a robotic 16 kHz voice (set F): "pocket dial" written as "pocketile".
    turns = _turns(("agent", "Pinecrest Roofing, this is Tamika, calls may be recorded. How can I help you?"),
                   ("customer", "Fox, Fox, Fox, and O, the blue one."), ("agent", "Hello? Sir? Mem?"),
                   ("agent", "I think this might be a pocketile. I'm going to hang up now. Bye."))
    assert statuses(checklist, turns)["further_help"] == "not_applicable"
    # An insurer's "you called us about an accident" is no accidental call.
    turns[-1] = TurnView(index=3, role="agent", text="I see you called us about an accident last week.", start=12,
                         end=15)
    assert statuses(checklist, turns)["further_help"] == "fail"


def test_a_prohibited_word_the_transcriber_split_in_two_still_fails(checklist: Checklist) -> None:
    said = statuses(checklist, _turns(GOOD_OPENING, ("customer", "Could I send some info to the practice manager?"),
                                      ("agent", "What ever, send it to the info address on the website."),
                                      GOOD_CLOSING))
    assert said["prohibited_phrases"] == "fail"


def test_a_bag_or_file_read_out_after_a_name_check_alone_fails(checklist: Checklist) -> None:
    assert statuses(checklist, _turns(("customer", "Hello?"),
                                      ("agent", "Hi, this is Keoni from Pacific Crest Airlines. This call may be "
                                                "recorded. Is this Maria Reyes?"),
                                      ("customer", "Yes, speaking."),
                                      ("agent", "Your teal suitcase, file H N L two seven three one five, arrived "
                                                "on this morning's flight."),
                                      GOOD_CLOSING))["identity_verification"] == "fail"


def test_an_agent_cut_off_mid_sentence_by_the_hang_up_is_a_dropped_call(checklist: Checklist) -> None:
    result = statuses(checklist, _turns(("agent", "Anadolu Doğalgaz, ben Ece. Görüşmemiz kayıt altına alınmaktadır."),
                                        ("customer", "Neyse, belki sonra tekrar ararım, bilmiyorum."),
                                        ("agent", "Efendim, isterseniz ben şimdi yardımcı—")))
    assert result["further_help"] == result["closing"] == "not_applicable"


def test_a_security_question_said_without_its_question_mark_is_still_asked(checklist: Checklist) -> None:
    # Whisper drops the "?" of "And for security, the last four digits of the phone number on the account?"
    assert _identity(checklist, ("customer", "My internet keeps dropping out."),
                     ("agent", "Let me get your account up. Can I take the account holder's full name?"),
                     ("customer", "Carys Navies."),
                     ("agent", "And for security, the last four digits of the phone number on the account."),
                     ("customer", "Zero three seven seven."),
                     ("agent", "Thanks. Okay, I can see the previous calls, engineer visit on the 22nd of February.")
                     ) == "pass"


def test_a_booking_read_out_as_i_got_your_after_no_check_fails(checklist: Checklist) -> None:
    assert _identity(checklist, ("customer", "Yes! That's me."),
                     ("agent", "Cool. I got your ninety-five dollar tow to Pearl City Tire, card payment, right?")
                     ) == "fail"


def test_closing_items_need_review_when_only_the_agents_garbled_opening_was_heard(checklist: Checklist) -> None:
    def call(confidence: float) -> dict[str, str]:
        opening = TurnView(index=0, role="agent", text="Kuzey Kombi, ben Elif. Geşmiş olsun, temem makarya.",
                           start=0, end=3, confidence=confidence)
        return statuses(checklist, [opening, TurnView(1, "customer", "Kombim çalışmıyor, su akıtıyor.", 4, 8),
                                    TurnView(2, "customer", "Tamam, teşekkürler.", 60, 62)])

    lost = call(0.3)  # the agent's later turns were lost by the transcriber, not left unsaid
    assert (lost["further_help"], lost["closing"]) == ("needs_review", "needs_review")
    heard = call(0.95)  # heard clearly: an agent who said nothing after the opening did not offer or sign off
    assert (heard["further_help"], heard["closing"]) == ("fail", "fail")


def test_identifiers_asked_with_the_words_a_transcriber_changed_still_count(checklist: Checklist) -> None:
    # Set L at 16 kHz: the "?" of the next security question lost after a thanks, and "date of birth" heard as
    # "date on birth"; both checks were complete, so the account details after them pass.
    assert _identity(checklist, ("agent", "Let's get it sorted. Can I have a name on the account?"),
                     ("customer", "Data with field."),
                     ("agent", "Thanks, beta, and the last four digits on the phone number on the account."),
                     ("customer", "0142"),
                     ("agent", "Perfect. I can see your line is active, no data cap reached.")) == "pass"
    assert _identity(checklist, ("agent", "Before I go into the account, can you confirm your full name and date on "
                                          "birth for me?"),
                     ("customer", "Vader Whitfield, October 3rd, 1988."),
                     ("agent", "Thank you. I put a credit of $24 on your account for the 4 days.")) == "pass"
    # A thanks followed by no identifier stays no question
    assert _identity(checklist, ("agent", "Can I have a name on the account?"), ("customer", "Dana Whitfield."),
                     ("agent", "Thanks, Dana, and the line looks fine on the account.")) == "fail"


def test_a_booking_or_a_numbered_address_read_out_after_only_a_name_check_fails_identity(checklist: Checklist) -> None:
    # Set M (after its first score): outbound calls reading the booking or the address on file to "Is this Darnell?"
    booking = _identity(checklist, ("agent", "Is this Darnell?"), ("customer", "Yeah, this is him."),
                        ("agent", "So I've got you down for tomorrow at eight for the brake inspection on the Accord."))
    address = _identity(checklist, ("agent", "Is this Barbara?"), ("customer", "Yes! Yes, it is."),
                        ("agent", "I'm on my way for your AC appointment at ten, at 4127 Larkin Drive."))
    assert booking == "fail" and address == "fail"
    # a street word without a house number is no address ("a test drive", "so close")
    assert _identity(checklist, ("customer", "Can I book a test drive? The showroom is so close to me."),
                     ("agent", "Of course, Saturday at ten works for a test drive.")) == "not_applicable"


def test_an_outbound_morning_greeting_on_unsure_words_is_no_misheard_recording_notice(checklist: Checklist) -> None:
    # Set M at 16 kHz: "Morning" is 0.71 alike to "monitoring"; the notice was never said, so the item fails
    opening = ("Morning, this is Atrium. It's Callum from Kewstoke Plumbing. I'm the engineer coming out for your "
               "boil right now in the F-22 at Tarnas Road. I'm about 20 minutes away.")
    turns = [TurnView(index=0, role="customer", text="Hello.", start=0.0, end=1.0, confidence=0.48),
             TurnView(index=1, role="agent", text=opening, start=1.0, end=9.0, confidence=0.67),
             TurnView(index=2, role="customer", text="Brilliant. Is there anywhere to park?", start=9.0, end=11.0),
             TurnView(index=3, role="agent", text="I'll find something.", start=11.0, end=12.0, confidence=0.84)]
    result = {r.id: r.status for r in check_call(checklist, CallFacts(turns=turns))}
    assert result["disclosure"] == "fail"
