"""Label decisions that do not need the LLM: booking outcomes, whole-call seed data, closing-turn cues."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analysis.classifier import CallClassifier, load_seed_calls
from pipeline.analysis.outcome import apply_outcomes, find_outcome
from pipeline.analysis.sentiment import ClosingCues, build_sentiment
from pipeline.analysis.sentiment_model import AgentManner, load_cues
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.analysis.text import TurnView, norm
from pipeline.settings import AnalysisSettings

SETTINGS = AnalysisSettings()
TAXONOMY = Taxonomy.load(SETTINGS.taxonomy_file)
BOOKED = next(rule for rule in TAXONOMY.outcomes if rule.key == "booked")


def _turns(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=role, text=text, start=i * 4.0, end=i * 4.0 + 3) for i, (role, text) in
            enumerate(lines)]


def _decided(turns: list[TurnView], scores: dict[str, float]) -> str | None:
    """The label the outcome rules decide for ``turns`` with the classifier's ``scores``, if any."""
    decided = apply_outcomes(TAXONOMY.outcomes, turns, scores)
    return decided[0] if decided is not None else None


PRICE_THEN_BOOK = _turns(
    ("agent", "Homefix, Priya speaking, how can I help?"),
    ("customer", "How much do you charge to fix a dripping tap? Just want an idea of the cost."),
    ("agent", "It's a forty pound call-out and most taps are done within that."),
    ("customer", "Oh that's not bad. Go on then, Thursday morning if you can."),
    ("agent", "That's booked for Thursday between eight and twelve, you'll get a text the day before."),
    ("customer", "Great, thanks."),
)


def test_agent_confirming_a_booking_decides_potential_customer_over_a_price_guess() -> None:
    decided = apply_outcomes(TAXONOMY.outcomes, PRICE_THEN_BOOK, {"Price Research": 0.4, "Potential Customer": 0.2})
    assert decided is not None
    label, hit = decided
    assert label == "Potential Customer" and hit.turn.index == 4 and hit.phrase == "is booked for"


def test_a_call_only_to_say_thank_you_is_others_but_a_booking_after_the_thanks_still_wins() -> None:
    thanks = _turns(("agent", "Good afternoon, Pinecrest Airlines, Renee speaking."),
                    ("customer", "Hi! I don't need anything, I just wanted to say thank you to somebody."),
                    ("agent", "That's lovely, I'll log it as a compliment for her."))
    assert _decided(thanks, {"Potential Customer": 0.3, "Others": 0.1}) == "Others"
    then_booked = _turns(*[(t.role, t.text) for t in thanks],
                         ("customer", "Actually, while I'm on, I need a flight to Denver on Friday."),
                         ("agent", "Of course. That's confirmed for Friday at nine, you'll get a confirmation email."))
    assert _decided(then_booked, {"Potential Customer": 0.3, "Others": 0.1}) == "Potential Customer"
    # thanks for how a problem was caught is no complaint, whatever the classifier reads in the story
    story = _turns(("customer", "He sent me to the hospital and it's glaucoma. I just wanted to ring and say thank "
                                "you, to Mr Vyas."))
    assert _decided(story, {"Complaint": 0.3, "Others": 0.1}) == "Others"


def test_a_business_asking_to_work_through_the_company_is_platform_membership_even_when_signed_up() -> None:
    turns = _turns(("agent", "Ticketburst, Nicole speaking."),
                   ("customer", "I own a little jazz club. I wanna be one of your venues, sell through you guys."),
                   ("agent", "Lovely. I've set you up with a partner account, you're all set."))
    assert _decided(turns, {"Potential Customer": 0.4, "Platform Membership": 0.2}) == "Platform Membership"
    buyer = _turns(("customer", "Can I get tickets for Friday's show through you?"),
                   ("agent", "Yes, that's booked for Friday, you'll get a confirmation email."))
    assert _decided(buyer, {"Potential Customer": 0.4}) == "Potential Customer"


def test_an_item_under_the_makers_warranty_is_guaranteed_product_unless_booked_or_an_installation() -> None:
    warranty = _turns(("customer", "My washer's making a grinding noise, it's eight months old."),
                      ("agent", "Then it's still under the manufacturer's warranty, call Vellmann directly."))
    assert _decided(warranty, {"Potential Customer": 0.3}) == "Guaranteed Product"
    assert _decided(warranty, {"Installation": 0.3, "Potential Customer": 0.2}) is None  # Installation stands
    paid = _turns(*[(t.role, t.text) for t in warranty], ("customer", "I'd rather you came, I'll pay."),
                  ("agent", "Okay, that's booked for Tuesday at ten."))
    assert _decided(paid, {"Potential Customer": 0.3}) == "Potential Customer"


def test_a_caller_asking_to_be_rung_later_is_call_later_but_not_a_complaint_or_a_booking() -> None:
    later = _turns(("agent", "Hi, it's Dmitri from Brightvale Solar about your quote."),
                   ("customer", "I'm on a ladder. Not now, man, can you call me Thursday at five?"),
                   ("agent", "Absolutely, Thursday at five it is."))
    assert _decided(later, {"Potential Customer": 0.3, "Call Later": 0.2}) == "Call Later"
    assert _decided(later, {"Complaint": 0.3}) is None  # the complaint stands
    booked = _turns(("customer", "Can you call me back later about the price?"),
                    ("agent", "It's ninety. Shall I book you in?"), ("customer", "Yes please, book it."),
                    ("agent", "Done, that's booked for Tuesday at ten."))
    assert _decided(booked, {"Call Later": 0.3}) == "Potential Customer"


def test_an_offer_to_book_is_not_a_booking() -> None:
    turns = _turns(("customer", "How much is a boiler service?"),
                   ("agent", "Ninety pounds. Shall I book you in for next week?"),
                   ("customer", "No, I'm just comparing prices for now, thanks."))
    assert find_outcome(BOOKED, turns) is None


def test_accepting_an_offered_phone_call_is_not_accepting_a_purchase() -> None:
    turns = _turns(("customer", "The thermostat's blank, is that the boiler?"),
                   ("agent", "Likely just its batteries. Shall I give you a ring in ten minutes to check it works?"),
                   ("customer", "Yes, go on then, if you don't mind."))
    assert find_outcome(BOOKED, turns) is None
    assert find_outcome(BOOKED, PRICE_THEN_BOOK) is not None  # "go on then" after a price still counts


def test_a_customer_who_backs_out_right_after_the_booking_cancels_it() -> None:
    turns = _turns(("customer", "Can someone look at my washing machine?"),
                   ("agent", "I've booked you in for Monday at nine, the call-out is sixty pounds."),
                   ("customer", "Sixty? Actually no, cancel that, it's too much."))
    assert find_outcome(BOOKED, turns) is None


def test_a_revisit_booked_for_a_complaint_stays_a_complaint_when_the_classifier_ranks_it_first() -> None:
    turns = _turns(("customer", "Your plumber came yesterday and it's leaking worse than before, I'm furious."),
                   ("agent", "I'm so sorry. I've booked you in for a free revisit tomorrow at ten."))
    assert find_outcome(BOOKED, turns) is not None
    assert apply_outcomes(TAXONOMY.outcomes, turns, {"Complaint": 0.3, "Potential Customer": 0.2}) is None


def test_turkish_booking_confirmation_is_recognised() -> None:
    turns = _turns(("customer", "Kombim arızalı, yarın biri gelebilir mi?"),
                   ("agent", "Randevunuzu oluşturdum, yarın saat onda ustamız orada olacak."))
    hit = find_outcome(BOOKED, turns)
    assert hit is not None and hit.turn.index == 1


def test_pronoun_contractions_are_expanded_but_possessives_are_not() -> None:
    assert norm("That's booked, it's fine, John's van") == " that is booked it is fine johns van "


def test_taxonomy_refuses_an_outcome_that_names_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="unknown labels"):
        Taxonomy.from_dict({"categories": [{"name": "Potential Customer"}],
                            "outcomes": {"booked": {"label": "Customer", "agent_phrases": ["booked"]}}})


def test_seed_calls_file_is_validated_against_the_taxonomy(tmp_path: Path) -> None:
    bad = tmp_path / "seed.yaml"
    bad.write_text('calls:\n  - {label: "Not A Label", text: "hello"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="Not A Label"):
        load_seed_calls(bad, TAXONOMY)
    for seed_file in SETTINGS.seed_calls_files:
        pairs = load_seed_calls(seed_file, TAXONOMY)
        assert len(pairs) >= 10 * len(TAXONOMY.label_names)
        assert {label for _, label in pairs} == set(TAXONOMY.label_names)


def test_seed_calls_of_a_left_out_set_are_not_trained_on(tmp_path: Path) -> None:
    sets_file = SETTINGS.seed_calls_files[-1]
    everything = load_seed_calls(sets_file, TAXONOMY)
    without_c = load_seed_calls(sets_file, TAXONOMY, leave_out=["holdout5/"])
    assert 40 <= len(everything) - len(without_c) <= 64  # set C's non-empty calls
    home = tmp_path / "home"
    left_out = CallClassifier(home, TAXONOMY, seed_calls_files=[sets_file], seed_leave_out=["holdout5/"])
    assert left_out.train([]).n_seed == sum(len(label.examples) for label in TAXONOMY.llm_labels) + len(without_c)
    # A model trained with another set left out is stale for this one: retrained, never reused.
    assert CallClassifier(home, TAXONOMY, seed_calls_files=[sets_file], seed_leave_out=["holdout4/"]).model is None


def test_classifier_trains_on_seed_calls_and_retrains_when_the_file_changes(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(Path(SETTINGS.seed_calls_files[0]).read_text(encoding="utf-8"), encoding="utf-8")
    home = tmp_path / "home"
    classifier = CallClassifier(home, TAXONOMY, seed_calls_files=[seed])
    model = classifier.train([])
    examples = sum(len(label.examples) for label in TAXONOMY.llm_labels)
    assert model.n_seed == examples + len(load_seed_calls(seed, TAXONOMY))
    probs = classifier.predict("hi, I'm a plasterer with my own firm, how do I sign up to get jobs from you? "
                               "what's the monthly fee for members?")
    assert max(probs, key=lambda k: probs[k]) == "Platform Membership"
    assert CallClassifier(home, TAXONOMY, seed_calls_files=[seed]).model is not None  # same seeds: reloaded
    seed.write_text(seed.read_text(encoding="utf-8") + '  - {label: Others, text: "wrong number sorry"}\n',
                    encoding="utf-8")
    assert CallClassifier(home, TAXONOMY, seed_calls_files=[seed]).model is None  # stale: retrained on first use


CUES = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("closing", "expected"),
    [
        ("Oh that's brilliant, thank you so much!", 1.0),
        ("This is ridiculous, I've been waiting all week.", -1.0),
        ("Okay, thanks, bye.", 0.0),
        ("Well, that's not brilliant, is it.", 0.0),
        ("Çok teşekkür ederim, harika.", 1.0),
        # a mood the customer turns from with "but" is where they were, not where they ended
        ("Açıkçası sinirli aradım ama iyi çözdünüz.", 1.0),
        ("I was furious when I rang, but you've been ever so good.", 1.0),
        ("Thanks a lot, but honestly this is ridiculous.", 0.0),
    ],
)
def test_closing_cues_score_the_customers_last_words(closing: str, expected: float) -> None:
    turns = _turns(("agent", "Anything else?"), ("customer", closing))
    assert CUES.score(turns)[0] == expected


def test_a_grateful_goodbye_lifts_a_neutral_llm_reading_to_positive() -> None:
    turns = _turns(("customer", "My boiler's broken."), ("agent", "Booked for tomorrow."),
                   ("customer", "Thank you so much, you're a lifesaver."))
    probs = {"customer_end": {"positive": 0.3, "neutral": 0.6, "negative": 0.1}}
    plain = build_sentiment(turns, "neutral", "neutral", "positive", probs, thresholds={"customer": (-0.3, 0.4)})
    cued = build_sentiment(turns, "neutral", "neutral", "positive", probs, thresholds={"customer": (-0.3, 0.4)},
                           end_cue=0.4 * CUES.score(turns)[0])
    assert plain.customer.at("end").label == "neutral"  # type: ignore[union-attr]
    assert cued.customer.at("end").label == "positive"  # type: ignore[union-attr]


def test_caller_speech_that_could_not_be_transcribed_is_uncertain_not_empty() -> None:
    from pipeline.analysis.analyser import is_empty_call, is_unintelligible
    from pipeline.records import CallMetrics, RoleMetrics

    turns = _turns(("agent", "Evim Usta, merhaba, ben Elif."), ("agent", "Başka bir sorunuz var mı?"))
    spoke = CallMetrics(duration_s=60, talk_seconds=50,
                        per_role={"customer": RoleMetrics(talk_seconds=18.5), "agent": RoleMetrics(talk_seconds=31)})
    assert is_empty_call(turns, spoke, SETTINGS)[0]
    unintelligible, reason = is_unintelligible(turns, spoke, SETTINGS)
    assert unintelligible and "18 s" in reason
    silent = CallMetrics(duration_s=60, talk_seconds=20, per_role={"customer": RoleMetrics(talk_seconds=1.2)})
    assert not is_unintelligible(turns, silent, SETTINGS)[0]
    hello = [*turns, TurnView(index=2, role="customer", text="Hello? Hello? Can you hear me? Hello?", start=9, end=15)]
    said_hello = CallMetrics(duration_s=20, talk_seconds=12, per_role={"customer": RoleMetrics(talk_seconds=6)})
    assert not is_unintelligible(hello, said_hello, SETTINGS)[0]  # words were heard: a real empty call


def test_shipped_sentiment_calibration_is_for_the_default_model_and_prompt() -> None:
    # A prompt or default-model change without `python -m bench.fit_sentiment --write` would silently
    # switch the stage back to thresholds: this keeps the two in step.
    from pipeline.analysis.prompts import Prompt
    from pipeline.analysis.sentiment_model import SentimentCalibration
    from pipeline.settings import Settings

    settings = Settings()
    calibration = SentimentCalibration.load(settings.analysis.sentiment_calibration_file)  # type: ignore[arg-type]
    prompt = Prompt.load(settings.analysis.prompts_dir, settings.analysis.prompt)
    # A prompt whose choice probabilities match an earlier version's names it in `scores_as`.
    versions = [prompt.version, *prompt.extra.get("scores_as", "").split()]
    assert any(calibration.applies_to(settings.llm.embedded_model, v) for v in versions)
    assert not any(calibration.applies_to("gemma3:4b", v) for v in versions)
    assert set(calibration.customer.classes) == set(calibration.agent.classes) == {"positive", "neutral", "negative"}


def test_calibration_coefficients_reproduce_scikit_learn_probabilities() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pipeline.analysis.sentiment_model import LinearModel

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3))
    y = np.where(x[:, 0] > 0.5, "positive", np.where(x[:, 0] < -0.5, "negative", "neutral"))
    fitted = LogisticRegression(max_iter=2000).fit(x, y)
    model = LinearModel(tuple(fitted.classes_), ("a", "b", "c"), tuple(tuple(r) for r in fitted.coef_),
                        tuple(fitted.intercept_))
    ours = model.probabilities(list(x[0]))
    theirs = dict(zip(fitted.classes_, fitted.predict_proba(x[:1])[0], strict=True))
    assert all(abs(ours[k] - theirs[k]) < 1e-9 for k in theirs)


def test_calibrated_customer_sentiment_reads_a_grateful_and_a_curt_ending_apart() -> None:
    from pipeline.analysis.sentiment_model import SentimentCalibration, customer_features

    calibration = SentimentCalibration.load(SETTINGS.sentiment_calibration_file)  # type: ignore[arg-type]
    grateful = _turns(("agent", "That's booked for Monday."),
                      ("customer", "Brilliant, thank you so much, you've been really helpful."))
    curt = _turns(("agent", "The call-out fee is ninety pounds."),
                  ("customer", "That's ridiculous, I'm not paying that."), ("agent", "Anything else?"),
                  ("customer", "No."))
    happy = calibration.customer.probabilities(customer_features(grateful, 0.3, CUES))
    unhappy = calibration.customer.probabilities(customer_features(curt, 0.3, CUES))
    assert max(happy, key=lambda k: happy[k]) == "positive"
    assert max(unhappy, key=lambda k: unhappy[k]) == "negative"


def test_whisper_spelling_of_youre_booked_still_counts_as_a_booking() -> None:
    turns = _turns(("customer", "Can we book the survey?"),
                   ("agent", "Thank you, Emma, your book for our site visit on Tuesday at 10."))
    hit = find_outcome(BOOKED, turns)
    assert hit is not None and hit.phrase == "your book for"


@pytest.mark.parametrize(
    "lines",
    [
        [("agent", "The five hundred meg plan is thirty a month, engineer Tuesday at eight."),
         ("customer", "Tuesday at eight works, see you then.")],
        [("agent", "Premium is twelve pounds a month."), ("customer", "Okay, go ahead with the premium plan.")],
        [("customer", "Can someone come Friday?"), ("agent", "Done, the engineer is yours on Friday.")],
    ],
)
def test_an_agreed_time_price_or_next_step_is_a_potential_customer_without_the_word_book(
    lines: list[tuple[str, str]],
) -> None:
    decided = apply_outcomes(TAXONOMY.outcomes, _turns(*lines), {"Price Research": 0.5})
    assert decided is not None and decided[0] == "Potential Customer"


def test_a_customer_who_takes_it_back_is_no_booking() -> None:
    turns = _turns(("agent", "It's sixty for the visit."), ("customer", "Go on then, book it."),
                   ("agent", "Great."), ("customer", "Actually no, that's too much, cancel it."))
    assert apply_outcomes(TAXONOMY.outcomes, turns, {"Service Fee Rejected": 0.5}) is None


@pytest.mark.parametrize(
    ("customer", "llm", "expected"),
    [
        ("Frankly I'm getting the runaround here, this is the third time I've called.", "neutral", "negative"),
        ("Hi! We're so excited, we'd love a quote for the move!", "neutral", "positive"),
        ("Oh, hi! Yes. Okay, go ahead.", "neutral", "positive"),  # one exclamation, nothing negative
        ("Hello, I'm calling about a new broadband contract.", "positive", "neutral"),
        ("Hello, I'm calling about a new broadband contract.", "negative", "negative"),
    ],
)
def test_the_customers_mood_at_the_start_comes_from_their_opening_words(customer: str, llm: str,
                                                                       expected: str) -> None:
    from pipeline.analysis.sentiment import start_label

    turns = _turns(("agent", "Northfield Broadband, Priya speaking."), ("customer", customer))
    assert start_label(turns, llm) == expected


def test_an_angry_opening_with_exclamations_is_negative_at_the_start() -> None:
    from pipeline.analysis.sentiment import start_label

    turns = _turns(("agent", "Brightline, Tom speaking."),
                   ("customer", "Your engineer was supposed to come and nobody turned up! Nobody even called!"))
    assert start_label(turns, "neutral") == "negative"


def _lines(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=r, text=t, start=i * 4.0, end=i * 4.0 + 3) for i, (r, t) in enumerate(lines)]


def _manner() -> AgentManner:
    _, manner = load_cues(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]
    return manner


def test_agent_courteous_through_the_call_is_positive_curt_is_negative_plain_is_neutral() -> None:
    manner = _manner()
    courteous = _lines(("agent", "Good morning, how can I help?"), ("customer", "My boiler is broken."),
                       ("agent", "Oh no, I'm sorry to hear that. Of course, let me get someone out to you."))
    curt = _lines(("agent", "Yeah?"), ("customer", "My boiler is broken, this is the third time."),
                  ("agent", "Like I said, you need to book online. Calm down."))
    plain = _lines(("agent", "Acme, Tom."), ("customer", "Do you do gutters?"), ("agent", "No. We do roofs only."))
    assert manner.label(courteous) == "positive"
    assert manner.label(curt) == "negative"
    assert manner.label(plain) == "neutral"


def test_strain_and_warmth_in_the_customers_opening_words() -> None:
    from pipeline.analysis.sentiment import start_label

    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]
    strained = _lines(("agent", "Hi, is this Kyle?"), ("customer", "Yeah, who is this? I'm driving."))
    warm = _lines(("agent", "Hi, it's Coolbridge."), ("customer", "Yes, hi, that's me. I was expecting you."))
    assert start_label(strained, "neutral", cues) == "negative"
    assert start_label(warm, "neutral", cues) == "positive"
    worried = _lines(("agent", "Harbor Bank, Ana."), ("customer", "I lost my card, I'm kind of freaking out a bit."))
    relieved = _lines(("agent", "We have a plumber free today."), ("customer", "Oh thank God. Yes, please."))
    assert start_label(worried, "neutral", cues) == "negative"
    assert start_label(relieved, "neutral", cues) == "positive"


def test_an_agent_giving_instructions_is_not_curt_for_it() -> None:
    manner = _manner()
    instructions = _lines(("agent", "Acme Rentals, Tom."), ("customer", "What do I bring for the van?"),
                          ("agent", "You need to bring your licence, and you have to be over twenty-five."))
    assert manner.label(instructions) == "neutral"


def test_an_agent_saying_when_the_parcel_arrives_or_reading_codes_is_not_curt() -> None:
    manner = _manner()
    delivery = _lines(("agent", "Swift Couriers, Ana."), ("customer", "Where is my parcel?"),
                      ("agent", "It left the depot, you should have it by Friday. We read the codes on the van."))
    dismissive = _lines(("agent", "Swift Couriers."), ("customer", "Where is my parcel? I asked twice."),
                        ("agent", "As I already said, it is on the van."))
    assert manner.label(delivery) == "neutral"
    assert manner.label(dismissive) == "negative"


def test_a_complaint_call_opens_upset_when_the_opening_words_show_no_mood() -> None:
    from pipeline.analysis.sentiment import start_label

    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]
    plain = _lines(("agent", "Brightline, Sarah."), ("customer", "Hello. Your engineer came on Monday for the boiler."))
    glad = _lines(("agent", "Brightline, Sarah."), ("customer", "Hi! Thank you so much for Monday, but one thing."))
    assert start_label(plain, "neutral", cues) == "neutral"
    assert start_label(plain, "neutral", cues, upset_by_default=True) == "negative"
    assert start_label(glad, "neutral", cues, upset_by_default=True) == "positive"
    assert "Complaint" in SETTINGS.start_negative_labels


def test_a_negative_end_on_words_the_transcriber_was_unsure_of_needs_a_word_of_complaint() -> None:
    from pipeline.analysis.sentiment import unsure_negative_end

    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]

    def call(last: str, confidence: float) -> list[TurnView]:
        return [TurnView(index=0, role="agent", text="Anything else?", start=0, end=2),
                TurnView(index=1, role="customer", text=last, start=3, end=6, confidence=confidence)]

    garbled = call("No that is a mess sake, the pay the money.", 0.45)
    assert unsure_negative_end(garbled, cues, SETTINGS.unsure_end_confidence) == "neutral"
    assert unsure_negative_end(call("Brilliant, the pay the money.", 0.45), cues, 0.7) == "positive"
    assert unsure_negative_end(call("This is ridiculous, the pay the money.", 0.45), cues, 0.7) is None
    assert unsure_negative_end(call("No that is a mess sake, the pay the money.", 0.95), cues, 0.7) is None


def test_an_agent_whose_words_the_transcriber_lost_gets_the_usual_label_not_matter_of_fact() -> None:
    manner = _manner()

    def call(confidence: float) -> list[TurnView]:
        return [TurnView(index=0, role="agent", text="Kuzey Kombi, Emre. Bu bu defendigim.", start=0, end=2,
                         confidence=confidence),
                TurnView(index=1, role="customer", text="Kombim calismiyor.", start=3, end=5),
                TurnView(index=2, role="agent", text="Getmis olsun, kazini sacik mi?", start=6, end=8,
                         confidence=confidence)]

    assert manner.label(call(0.45)) == "positive"
    assert manner.label(call(0.95)) == "neutral"


def test_a_busy_or_hesitant_caller_is_not_upset_unless_their_words_say_so() -> None:
    """Uncertain and Call Later calls (analysis.calm_labels): "I'm driving" is why they ask to be rung later."""
    from pipeline.analysis.sentiment import start_label

    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]
    driving = _lines(("agent", "Hi, is this Kyle?"), ("customer", "Yeah, who is this? I'm driving."))
    not_great = _lines(("agent", "Hi, is this Sam?"), ("customer", "Look, I'm driving, mate, it's not a great time."))
    hesitant = _lines(("agent", "Acme, Tom."), ("customer", "Yeah, hi, um, it's about the, uh, the thing in the"))
    fed_up = _lines(("agent", "Hi, is this Kyle?"), ("customer", "I'm driving and I'm fed up with these calls."))
    assert start_label(driving, "neutral", cues) == "negative"  # elsewhere a busy caller is a strained one
    assert start_label(driving, "neutral", cues, calm_by_default=True) == "neutral"
    assert start_label(not_great, "neutral", cues, calm_by_default=True) == "neutral"
    assert start_label(hesitant, "negative", cues, calm_by_default=True) == "neutral"  # the LLM's negative
    assert start_label(fed_up, "neutral", cues, calm_by_default=True) == "negative"
    assert {"Uncertain", "Call Later"} <= set(SETTINGS.calm_labels)


def test_a_busy_or_hesitant_caller_ends_neutral_unless_a_closing_word_is_negative() -> None:
    from pipeline.analysis.sentiment import calm_negative_end

    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]
    gone = _lines(("agent", "Can I take a number?"), ("customer", "Hey, sorry, I gotta— someone's at the door."))
    cross = _lines(("agent", "Can I take a number?"), ("customer", "Forget it, this is useless. Call me later."))
    assert calm_negative_end(gone, cues) == "neutral"
    assert calm_negative_end(cross, cues) is None


def test_a_plain_thanks_at_the_end_is_the_rubrics_neutral_goodbye() -> None:
    cues = ClosingCues.load(SETTINGS.sentiment_cues_file)  # type: ignore[arg-type]

    def ending(*customer: str) -> list[TurnView]:
        return _lines(("agent", "Anything else I can help with?"), *(("customer", text) for text in customer))

    assert cues.plain_goodbye(ending("Text is fine.", "No, that's it. Thanks, Brandon."))
    assert cues.plain_goodbye(ending("Tamam.", "Yok, şimdilik bu kadar, teşekkür ederim."))
    assert not cues.plain_goodbye(ending("No, that's it. Thank you!"))  # an exclamation is warmth
    assert not cues.plain_goodbye(ending("No, that's it. Thank you, seriously."))  # more than a goodbye
    assert not cues.plain_goodbye(ending("Brilliant, you've been so helpful.", "No, that's all, thanks."))
    assert not cues.plain_goodbye(ending("No, that's it."))  # no thanks: left to the model
