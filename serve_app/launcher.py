"""Start the whole service on one machine: Ray (if not running), the embedded database (if no
MongoDB URI is set), Serve's HTTP proxy and the application. Used by ``python -m serve_app``,
the tests and the load check."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import httpx

from pipeline.cluster import init_ray
from pipeline.settings import Settings
from pipeline.store.embedded import EmbeddedMongo

log = logging.getLogger(__name__)


@dataclass
class LocalServer:
    settings: Settings
    url: str
    embedded: EmbeddedMongo | None = None
    started_ray: bool = False
    apps: list[str] = field(default_factory=list)

    def stop(self) -> None:
        import ray
        from ray import serve

        try:
            serve.shutdown()
        except Exception:  # already gone: nothing left to stop
            log.debug("serve shutdown", exc_info=True)
        if self.started_ray and ray.is_initialized():
            ray.shutdown()
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def with_store_uri(settings: Settings) -> tuple[Settings, EmbeddedMongo | None]:
    """Settings naming a database every replica can reach: the configured one, else an embedded
    server started (and later stopped) by this process.

    With the embedded server, ``analysis.corrections_store: auto`` stays the file it means without a
    URI (the command line and batch jobs on this machine use that file too)."""
    if settings.store.mongo_uri:
        return settings, None
    embedded = EmbeddedMongo(
        settings.store_data_dir,
        port=settings.store.embedded_port,
        start_timeout_s=settings.store.embedded_start_timeout_s,
    )
    uri = embedded.start()
    store = settings.store.model_copy(update={"mongo_uri": uri})
    update: dict[str, object] = {"store": store}
    if settings.analysis.corrections_store == "auto":
        update["analysis"] = settings.analysis.model_copy(update={"corrections_store": "file"})
    return settings.model_copy(update=update), embedded


def start_local(
    settings: Settings, *, name: str | None = None, route_prefix: str | None = None, ready_timeout_s: float = 300.0
) -> LocalServer:
    from ray import serve

    from serve_app.app import build_app

    settings, embedded = with_store_uri(settings)
    # Logical CPUs are a budget for placing replicas, not cores: fractional replicas on a 2-core
    # machine fit in it while leaving room for Serve's own actors.
    num_cpus = settings.serve.ray_num_cpus or max(2, os.cpu_count() or 2)
    started_ray = init_ray(settings, address=settings.serve.ray_address, num_cpus=num_cpus)
    try:
        host, port = settings.serve.host, settings.serve.port
        serve.start(http_options={"host": host, "port": port})
        app_name = name or settings.serve.app_name
        prefix = route_prefix or settings.serve.route_prefix
        serve.run(build_app(settings), name=app_name, route_prefix=prefix, blocking=False)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}{prefix.rstrip('/')}"
        server = LocalServer(settings=settings, url=url, embedded=embedded, started_ray=started_ray, apps=[app_name])
        wait_ready(url, settings, ready_timeout_s)
        return server
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise


def wait_ready(url: str, settings: Settings, timeout_s: float) -> None:
    """Until /healthz answers (the app is deployed and its store reachable)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/healthz", timeout=5.0)
            if response.status_code in (200, 503):
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as err:
            last = type(err).__name__
        time.sleep(0.5)
    raise TimeoutError(f"the app at {url} did not come up within {timeout_s:.0f} s ({last})")
