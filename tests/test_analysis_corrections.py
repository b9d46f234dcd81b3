"""Learning from reviewer corrections, end to end: analyse, correct, retrain, analyse again.

Real parts throughout: SmolLM2 as the LLM (its labels are close to random, which is the point: the
classifier has to carry the learning), all-MiniLM-L6-v2 embeddings, logistic regression, JSONL
corrections under the settings' home.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pipeline.analysis.analyser import Analyser, correct_record, reanalyse
from pipeline.analysis.classifier import CallClassifier, JsonlCorrectionStore, corrections_store, record_correction
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.records import CallMetadata, CallRecord, Turn
from pipeline.settings import Settings
from pipeline.stage import CallState
from pipeline.store.corrections import MongoCorrectionStore, close_corrections, corrections_backend, open_corrections
from pipeline.store.embedded import free_port
from pipeline.store.store import StoreUnavailable
from tests.store_fixtures import store_settings
from tests.test_analysis_llm import shared_smol

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / ".cache" / "callaudit" / "models"

# This business does not clear gutters: only reviewer corrections can teach that (the seed examples
# make "clean my gutters" look like an ordinary cleaning job).
GUTTER_CALLS = [
    "Hi, my gutters are full of leaves and overflowing, can you send someone to clear them?",
    "I need the gutters on my bungalow cleaned out before winter, do you do that?",
    "Could someone come and unblock the guttering at the front of the house, it's spilling over?",
    "We'd like our gutters and downpipes cleared, how soon can you come?",
]
OTHER_CALLS = [
    ("My kitchen tap is leaking badly, can you send a plumber tomorrow?", "Potential Customer", None),
    ("How much roughly would you charge to paint a bedroom? Just comparing prices for now.", "Unnecessary Call",
     "Price Research"),
    ("Your engineer never turned up yesterday and nobody called me, I'm furious.", "Unnecessary Call", "Complaint"),
]
NEW_GUTTER_CALL = "Our gutters are blocked and overflowing again, can you send someone to clear the gutters?"


def make_record(record_id: str, customer_text: str) -> CallRecord:
    turns = [
        Turn(index=0, role="agent", track=0, start=0.5, end=4.0,
             text="Hello, Brightline Home Services, Sam speaking, calls are recorded. How can I help?"),
        Turn(index=1, role="customer", track=1, start=4.5, end=10.0, text=customer_text),
        Turn(index=2, role="agent", track=0, start=10.5, end=14.0,
             text="Thanks, let me tell you more about that. Anything else? Thanks for calling, bye."),
    ]
    return CallRecord(pipeline_version="t", record_id=record_id, audio_sha256=record_id.ljust(64, "0"), source="t",
                      file_name=record_id, metadata=CallMetadata(call_time=datetime(2026, 11, 20, 10, 0)), turns=turns)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A corrected call counts as much as a seed example here, so a handful of corrections is enough.
    return Settings(
        home=tmp_path_factory.mktemp("learning-home"), models_dir=MODELS,
        llm={"backend": "embedded", "embedded_model": "smollm2-135m", "max_tokens": 256},
        analysis={"classifier": "auto", "classifier_correction_weight": 1.0},
    )


@pytest.fixture(scope="module")
def analyser(settings: Settings) -> Analyser:
    return Analyser(settings, backend=shared_smol())


def test_corrections_train_the_classifier_and_change_the_next_calls_label(
    analyser: Analyser, settings: Settings
) -> None:
    before = analyser.run(CallState(record=make_record("gutter-before", NEW_GUTTER_CALL))).record.analysis
    assert before is not None and before.classification is not None
    assert before.classification.source == "classifier"
    assert before.subcategory != "Irrelevant Sector"

    analysed = [analyser.run(CallState(record=make_record(f"gutter-{i}", text))).record
                for i, text in enumerate(GUTTER_CALLS)]
    analysed += [analyser.run(CallState(record=make_record(f"other-{i}", text))).record
                 for i, (text, _, _) in enumerate(OTHER_CALLS)]

    # A reviewer corrects every call; the first correction goes through the record API, the rest by id only
    # (the analyser indexed each call's text, so the id is enough).
    irrelevant = {"category": "Unnecessary Call", "subcategory": "Irrelevant Sector"}
    corrected = correct_record(analysed[0], irrelevant, settings, reviewer="qa-1")
    assert corrected.analysis is not None and corrected.analysis.reviewed
    assert corrected.analysis.review is not None and corrected.analysis.review.reviewer == "qa-1"
    assert (corrected.analysis.category, corrected.analysis.subcategory) == ("Unnecessary Call", "Irrelevant Sector")
    for record in analysed[1 : len(GUTTER_CALLS)]:
        record_correction(record.record_id, irrelevant, home=settings.home)
    for record, (_, category, subcategory) in zip(analysed[len(GUTTER_CALLS) :], OTHER_CALLS, strict=True):
        record_correction(record.record_id, {"category": category, "subcategory": subcategory}, home=settings.home)
    store = corrections_store(settings.home)
    assert len(store.all()) == len(GUTTER_CALLS) + len(OTHER_CALLS)
    assert all(c.text for c in store.all())

    after = analyser.run(CallState(record=make_record("gutter-after", NEW_GUTTER_CALL))).record.analysis
    assert after is not None and after.classification is not None
    assert (after.category, after.subcategory) == ("Unnecessary Call", "Irrelevant Sector")
    assert "7 reviewed calls" in after.classification.justification
    assert (settings.home / "classifier" / "model.pkl").exists()

    # A fresh process loads the trained model instead of starting over.
    reloaded = CallClassifier.from_settings(settings.home, analyser.taxonomy, settings.analysis)
    assert reloaded.n_corrections == len(GUTTER_CALLS) + len(OTHER_CALLS)
    probs = reloaded.predict("Can you clear out my gutters, they're blocked with leaves?")
    assert max(probs, key=lambda k: probs[k]) == "Irrelevant Sector"


def test_reanalysing_a_corrected_call_keeps_the_reviewers_labels(analyser: Analyser, settings: Settings) -> None:
    record = analyser.run(CallState(record=make_record("reviewed-1", OTHER_CALLS[2][0]))).record
    record_correction(record.record_id, {"category": "Unnecessary Call", "subcategory": "Complaint",
                                         "customer_sentiment": "negative", "callback_promised": False},
                      home=settings.home, reviewer="qa-2")
    again = reanalyse(record, analyser)
    a = again.analysis
    assert a is not None and a.reviewed
    assert (a.category, a.subcategory) == ("Unnecessary Call", "Complaint")
    assert a.classification is not None and a.classification.source == "reviewer"
    assert a.flat_fields()["customer_sentiment"] == "negative"
    assert {"category", "customer_sentiment", "callback_promised"} <= set(a.corrected_fields)
    assert a.review is not None and a.review.reviewer == "qa-2" and "category" in a.review.fields


def test_unknown_label_fields_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="catgory"):
        record_correction("x", {"catgory": "Uncertain"}, home=tmp_path)


def test_latest_correction_of_a_call_wins_and_a_torn_line_is_ignored(tmp_path: Path) -> None:
    store = JsonlCorrectionStore(tmp_path / "c.jsonl")
    record_correction("a", {"category": "Uncertain"}, home=tmp_path, text="hello", store=store)
    record_correction("a", {"customer_sentiment": "negative"}, home=tmp_path, store=store)
    with store.path.open("a") as handle:
        handle.write('{"record_id": "b", "lab')  # a crash mid-write
    [only] = store.all()
    assert only.labels == {"category": "Uncertain", "customer_sentiment": "negative"} and only.text == "hello"


# ---------------------------------------------------------------------- corrections in MongoDB (a cluster)


def test_mongo_corrections_round_trip_latest_wins(mongo_server: str, tmp_path: Path) -> None:
    """Against the session's real SecantusDB: one document per correction, merged per call on read,
    and a second worker (its own client) sees the same corrections."""
    settings = store_settings(tmp_path, mongo_server)
    store = open_corrections(settings)
    other = MongoCorrectionStore.from_settings(settings)
    assert isinstance(store, MongoCorrectionStore)
    try:
        record_correction("a", {"category": "Unnecessary Call", "subcategory": "Complaint"}, home=tmp_path,
                          text="the engineer never came", reviewer="qa-1", store=store)
        record_correction("b", {"category": "Potential Customer"}, home=tmp_path, text="book a plumber", store=store)
        assert {c.record_id for c in other.all()} == {"a", "b"}  # fills the other worker's cache
        record_correction("a", {"customer_sentiment": "negative", "subcategory": "Service Fee Rejected"},
                          home=tmp_path, reviewer="qa-2", store=other)

        merged = {c.record_id: c for c in store.all()}
        assert merged["a"].labels == {"category": "Unnecessary Call", "subcategory": "Service Fee Rejected",
                                      "customer_sentiment": "negative"}
        assert merged["a"].text == "the engineer never came" and merged["a"].reviewer == "qa-2"
        assert merged["b"].labels == {"category": "Potential Customer"}
        # The other worker's cached read is refreshed: the collection changed since.
        assert {c.record_id: c.labels for c in other.all()} == {k: c.labels for k, c in merged.items()}
        got = store.get("a")
        assert got is not None and got.labels == merged["a"].labels and got.at == merged["a"].at
        assert store.get("nope") is None

        raw = list(store.collection.find({"record_id": "a"}).sort("at", 1))
        assert len(raw) == 2  # appended, never overwritten: the review history stays
        assert raw[0]["schema_version"] == 1 and raw[0]["reviewer"] == "qa-1" and raw[0]["at"].tzinfo is not None
        assert {"record_at", "at"} <= set(store.collection.index_information())
    finally:
        store.collection.database.client.drop_database(store.collection.database.name)
        close_corrections(store)
        other.close()


def test_corrections_store_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path("/nonexistent-home")
    assert corrections_backend(Settings(home=home)) == "file"
    assert isinstance(open_corrections(Settings(home=home)), JsonlCorrectionStore)
    cluster = Settings(home=home, store={"mongo_uri": "mongodb://db.example:27017/"})
    assert corrections_backend(cluster) == "mongo"
    chosen = open_corrections(cluster)  # pymongo connects lazily: nothing is contacted here
    assert isinstance(chosen, MongoCorrectionStore) and chosen.collection.name == "corrections"
    assert chosen.collection.database.name == "callaudit"
    close_corrections(chosen)
    pinned = Settings(home=home, store={"mongo_uri": "mongodb://db.example:27017/"},
                      analysis={"corrections_store": "file"})
    assert isinstance(open_corrections(pinned), JsonlCorrectionStore)
    with pytest.raises(ValueError, match="mongo_uri"):
        open_corrections(Settings(home=home, analysis={"corrections_store": "mongo"}))

    # `python -m serve_app` hands its replicas the embedded server's URI: "auto" stays the file there.
    from serve_app import launcher as local

    class Embedded:
        def __init__(self, *args: object, **kwargs: object) -> None: ...

        def start(self) -> str:
            return "mongodb://127.0.0.1:27999/"

    monkeypatch.setattr(local, "EmbeddedMongo", Embedded)
    embedded, _ = local.with_store_uri(Settings(home=home))
    assert embedded.store.mongo_uri and corrections_backend(embedded) == "file"
    chosen_mongo, _ = local.with_store_uri(Settings(home=home, analysis={"corrections_store": "mongo"}))
    assert corrections_backend(chosen_mongo) == "mongo"


def test_database_down_reads_what_was_read_last_and_saving_fails_clearly(
    mongo_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker started while the database is down trains on the corrections read last (kept beside the
    model); saving a correction then raises StoreUnavailable (the API answers 503)."""
    live_settings = store_settings(tmp_path, mongo_server)
    live = MongoCorrectionStore.from_settings(live_settings)
    taxonomy = Taxonomy.load(live_settings.analysis.taxonomy_file)
    try:
        for i, (text, category, subcategory) in enumerate(OTHER_CALLS):
            record_correction(f"r{i}", {"category": category, "subcategory": subcategory}, home=tmp_path, text=text,
                              store=live)
        assert len(live.all()) == len(OTHER_CALLS)
    finally:
        live.collection.database.client.drop_database(live.collection.database.name)
        live.close()

    dead_uri = f"mongodb://127.0.0.1:{free_port()}/"
    down = store_settings(tmp_path, dead_uri, database=live_settings.store.database, server_timeout_ms=300)
    dead = MongoCorrectionStore.from_settings(down)
    try:
        with caplog.at_level("WARNING", logger="pipeline.store.corrections"):
            classifier = CallClassifier(tmp_path / "worker", taxonomy)
            assert classifier.retrain_if_stale(dead)  # never raises: trains on what is available
        assert classifier.n_corrections == len(OTHER_CALLS)
        assert "could not be read from the database" in caplog.text
        assert dead.get("r2") is not None and dead.get("unknown") is None
        with pytest.raises(StoreUnavailable, match="correction was not saved"):
            record_correction("r9", {"customer_sentiment": "neutral"}, home=tmp_path, store=dead)
    finally:
        dead.close()


def test_analyser_on_a_cluster_applies_corrections_from_the_database(mongo_server: str, tmp_path: Path) -> None:
    """An analyser whose settings name a MongoDB reads corrections another worker saved there."""
    settings = store_settings(tmp_path, mongo_server).model_copy(update={
        "models_dir": MODELS,
        "llm": Settings(llm={"backend": "embedded", "embedded_model": "smollm2-135m", "max_tokens": 256}).llm,
    })
    worker = Analyser(settings, backend=shared_smol())
    assert isinstance(worker.corrections, MongoCorrectionStore)
    record = make_record("cluster-1", OTHER_CALLS[0][0])
    elsewhere = MongoCorrectionStore.from_settings(settings)  # e.g. the web app on another node
    try:
        correct_record(record, {"category": "Unnecessary Call", "subcategory": "Basic Job"}, settings,
                       reviewer="qa-3", corrections=elsewhere)
        a = worker.run(CallState(record=record)).record.analysis
        assert a is not None and (a.category, a.subcategory) == ("Unnecessary Call", "Basic Job")
        assert a.review is not None and a.review.reviewer == "qa-3"
        assert worker.classifier is not None and worker.classifier.n_corrections == 1  # trained on it
    finally:
        elsewhere.collection.database.client.drop_database(elsewhere.collection.database.name)
        elsewhere.close()
        close_corrections(worker.corrections)


def test_a_classifier_on_words_and_character_ngrams_trains_saves_and_reads_a_misspelt_call(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, analysis={"classifier_features": "tfidf_chars"})
    taxonomy = Taxonomy.load(settings.analysis.taxonomy_file)
    classifier = CallClassifier.from_settings(settings.home, taxonomy, settings.analysis)
    classifier.train([])
    probs = classifier.predict("hi I would like to book a boiler instalation for next tuesday how much is it")
    assert len(probs) >= 4 and set(probs) <= set(taxonomy.label_names)
    assert abs(sum(probs.values()) - 1.0) < 1e-6
    again = CallClassifier.from_settings(settings.home, taxonomy, settings.analysis)  # loaded from disk
    assert again.model is not None and again.predict("book a boiler instalation") == classifier.predict(
        "book a boiler instalation")


def test_the_classifier_reads_the_agents_words_apart_from_the_customers(tmp_path: Path) -> None:
    from pipeline.analysis.analyser import turn_views
    from pipeline.analysis.classifier import AGENT_SECTION, classifier_text, split_views

    record = make_record("agent-view", "My new dishwasher stopped draining, can someone come out?")
    record.turns.append(Turn(index=3, role="agent", track=0, start=15.0, end=18.0,
                             text="That model is under the maker's warranty, please call their service line."))
    customer, agent = split_views(classifier_text(turn_views(record.turns)))
    assert "dishwasher" in customer and "warranty" not in customer and "maker's warranty" in agent

    taxonomy = Taxonomy.load(Settings().analysis.taxonomy_file)
    # Two calls whose customers say the same thing and whose agents do not: only the agent's words tell them apart.
    same = "hi my washing machine is broken and leaking"
    seeds = tmp_path / "seeds.yaml"
    seeds.write_text(
        "calls:\n" + "".join(
            f"  - {{label: {label}, text: '{same} {i}', agent: '{agent_words}'}}\n"
            for i in range(6) for label, agent_words in (
                ("Guaranteed Product", "that is still under the manufacturer warranty so the maker repairs it"),
                ("Potential Customer", "lovely an engineer is booked for thursday morning see you then"))),
        encoding="utf-8")
    predicted = {}
    for weight in (0.0, 0.5):
        classifier = CallClassifier(tmp_path / f"w{weight}", taxonomy, seed_calls_files=[seeds], agent_weight=weight)
        classifier.train([])
        probs = classifier.predict(f"{same}{AGENT_SECTION}it is under the manufacturer warranty so the maker fixes it")
        predicted[weight] = probs["Guaranteed Product"] - probs["Potential Customer"]
    # The customer's words alone barely tell the two apart (only the taxonomy's own examples lean); the agent's do.
    assert predicted[0.5] > predicted[0.0] + 0.1
