"""``python -m batch run --reanalyse INPUT...``: re-run only the LLM analysis on stored transcripts.

Used after an LLM outage (records with analysis pending) or a prompt/model change; no audio is read
beyond hashing the inputs to find their records.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from functools import partial

from batch.inputs import hash_files, plan_inputs
from batch.job import JobSummary, init_ray, retry_args
from pipeline import PIPELINE_VERSION
from pipeline.records import CallRecord, make_record_id
from pipeline.settings import Settings
from pipeline.stage import StageChain
from pipeline.store.store import CallStore


def reanalyse_stored(settings: Settings, store: CallStore, inputs: list[str]) -> JobSummary:
    import ray
    from ray.data import ActorPoolStrategy

    from pipeline.analysis.analyser import Analyser

    started = time.perf_counter()
    job_id = f"reanalyse-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    plan = plan_inputs(inputs, settings)
    hash_files(plan.files, settings, settings.batch.hash_threads)
    summary = JobSummary(
        job_id=job_id, files=len(plan.files), rejected=len(plan.rejected), failures=dict(plan.rejected)
    )
    store.create_job("reanalyse", [f.name for f in plan.files], job_id=job_id)
    records: list[CallRecord] = []
    for item in plan.files:
        record = store.get_record(make_record_id(item.audio_sha256, PIPELINE_VERSION)) if item.audio_sha256 else None
        if record is None:
            summary.failures[item.name] = "no stored transcript for this recording: run the job without --reanalyse"
            store.update_job_file(job_id, item.name, "failed", reason=summary.failures[item.name])
        elif record.status != "ok":
            summary.skipped += 1
            store.update_job_file(
                job_id, item.name, "skipped", reason=f"call is {record.status}", record_id=record.record_id
            )
        else:
            records.append(record)
    if records:
        init_ray(settings)
        opts = settings.batch
        source = ray.data.from_items([{"record": r.model_dump_json()} for r in records])
        ds = source.map_batches(
            StageChain,
            fn_constructor_kwargs={"settings": settings, "stages": [Analyser]},
            batch_size=opts.analyse_batch_size,
            compute=ActorPoolStrategy(min_size=opts.analyse_pool[0], max_size=opts.analyse_pool[1]),
            num_cpus=opts.analyse_cpus,
            ray_remote_args_fn=partial(retry_args, True, opts.max_task_retries),
        )
        statuses: Counter[str] = Counter()
        for batch in ds.iter_batches(batch_size=settings.store.write_batch_size, batch_format="numpy"):
            done = [CallRecord.model_validate_json(str(text)) for text in batch["record"]]
            summary.spooled += store.upsert_records(done, job_id=job_id).spooled
            store.update_job_files(
                job_id,
                [
                    (r.source, "done", None if r.analysis_status == "done" else r.analysis_status, r.record_id)
                    for r in done
                ],
            )
            statuses.update(r.analysis_status for r in done)
        summary.ok = len(records)
        summary.analysis = dict(statuses)
    summary.wall_seconds = round(time.perf_counter() - started, 2)
    store.finish_job(job_id, {"analysis": summary.analysis, "failures": summary.failures})
    return summary


def _reason(record: CallRecord) -> str | None:
    if record.analysis_status == "done":
        return None
    messages = [e.message for e in record.errors if e.stage == "analyse"]
    return f"analysis {record.analysis_status}" + (f": {messages[-1]}" if messages else "")
