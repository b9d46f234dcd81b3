"""Results in MongoDB: call records and jobs, idempotent writes, spool and replay, queries, callbacks.

Plain pymongo, so a real MongoDB works unchanged (``CALLAUDIT_STORE__MONGO_URI``); with no URI the
store starts an embedded MongoDB-wire server (SecantusDB) under ``<home>/db``. See README.md here.
"""

from pipeline.store.callbacks import CallbackReport, verify_callbacks
from pipeline.store.embedded import EmbeddedMongo, EmbeddedStartError
from pipeline.store.migrations import MigrationReport, migrate
from pipeline.store.queries import (
    CallQuery,
    Page,
    agent_scorecards,
    build_filter,
    category_distribution,
    count_calls,
    daily_trends,
    export_calls,
    find_calls,
    iter_calls,
    overview,
    search_transcripts,
)
from pipeline.store.spool import ReplayReport, Spool
from pipeline.store.store import CallStore, StoreUnavailable, WriteResult
from pipeline.store.upgrades import SchemaTooNew

__all__ = [
    "CallQuery",
    "CallStore",
    "CallbackReport",
    "EmbeddedMongo",
    "EmbeddedStartError",
    "MigrationReport",
    "Page",
    "ReplayReport",
    "SchemaTooNew",
    "Spool",
    "StoreUnavailable",
    "WriteResult",
    "agent_scorecards",
    "build_filter",
    "category_distribution",
    "count_calls",
    "daily_trends",
    "export_calls",
    "find_calls",
    "iter_calls",
    "migrate",
    "overview",
    "search_transcripts",
    "verify_callbacks",
]
