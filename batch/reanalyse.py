"""``python -m batch run --reanalyse INPUT...``: re-run only the analysis stage group on stored calls.

Used after an LLM outage (records with analysis pending) or a prompt/model change; no audio is read
beyond hashing the inputs to find their records. The results go through the same save path as a
full run (``pipeline.save.CallWriter``), so reviewer corrections stay on the calls and the callbacks
of the customers touched are checked again.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

from batch.inputs import hash_files, plan_inputs
from batch.job import JobSummary, add_group, callback_counts
from pipeline import PIPELINE_VERSION
from pipeline.cluster import init_ray
from pipeline.records import CallRecord, make_record_id
from pipeline.save import CallWriter
from pipeline.settings import Settings
from pipeline.stage_groups import analysis_group
from pipeline.store.store import CallStore

NOT_STORED = "no stored transcript for this recording: run the job without --reanalyse"


def reanalyse_stored(settings: Settings, store: CallStore, inputs: list[str]) -> JobSummary:
    import ray

    started = time.perf_counter()
    job_id = f"reanalyse-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    plan = plan_inputs(inputs, settings)
    hash_files(plan.files, settings, settings.batch.hash_threads)
    summary = JobSummary(
        job_id=job_id, files=len(plan.files), rejected=len(plan.rejected), failures=dict(plan.rejected)
    )
    store.create_job("reanalyse", [f.name for f in plan.files], job_id=job_id)
    records: list[CallRecord] = []
    names: list[str] = []
    for item in plan.files:
        record = store.get_record(make_record_id(item.audio_sha256, PIPELINE_VERSION)) if item.audio_sha256 else None
        if record is None:
            summary.failures[item.name] = NOT_STORED
            store.update_job_file(job_id, item.name, "failed", reason=NOT_STORED)
        elif record.status == "failed":
            # Nothing to analyse without a transcript. Empty calls are analysed like any other: the
            # analysis decides Empty or Uncertain (unintelligible caller) by rule, as in a full run.
            summary.skipped += 1
            store.update_job_file(job_id, item.name, "skipped", reason="the call failed: no transcript",
                                  record_id=record.record_id)
        else:
            records.append(record)
            names.append(item.name)
    if records:
        init_ray(settings)
        source = ray.data.from_items([{"record": r.model_dump_json()} for r in records])
        ds = add_group(source, analysis_group(), settings)
        file_of = {r.record_id: name for r, name in zip(records, names, strict=True)}
        statuses: Counter[str] = Counter()
        callbacks: Counter[str] = Counter()
        writer = CallWriter(settings, store)
        try:
            for batch in ds.iter_batches(batch_size=settings.store.write_batch_size, batch_format="numpy"):
                done = [CallRecord.model_validate_json(str(text)) for text in batch["record"]]
                saved = writer.save(done, job_id=job_id, files=[file_of.get(r.record_id, r.source) for r in done])
                summary.spooled += saved.write.spooled
                callbacks.update(callback_counts(saved))
                statuses.update(r.analysis_status for r in done)
                summary.ok += sum(r.status == "ok" for r in done)
                summary.empty += sum(r.status == "empty" for r in done)
        finally:
            writer.close()
        summary.analysis = dict(statuses)
        summary.callbacks = dict(callbacks)
    summary.wall_seconds = round(time.perf_counter() - started, 2)
    store.finish_job(job_id, {"analysis": summary.analysis, "failures": summary.failures})
    return summary
