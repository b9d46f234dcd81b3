"""The Ray cluster both ways in run on: join it (or start one here) and ask whether it has GPUs.

Ray is imported inside the functions: the pipeline itself runs without it (``CallPipeline``).
"""

from __future__ import annotations

import os

from pipeline.settings import Settings


def init_ray(
    settings: Settings, *, address: str | None = None, num_cpus: int | None = None, dashboard: bool = False
) -> bool:
    """Join the cluster at ``address`` (else ``RAY_ADDRESS``), or start a local Ray; True if this call started it.

    Workers import pipeline/ from this checkout (on a cluster it is installed) and get this process's
    ``CALLAUDIT_HOME`` and offline model hub setting, so they find the same models and corrections.
    """
    import ray

    if ray.is_initialized():
        return False
    runtime_env = {
        "env_vars": {"CALLAUDIT_HOME": str(settings.home), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    }
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, runtime_env=runtime_env, log_to_driver=False, include_dashboard=dashboard)
    return True


def cluster_gpus() -> float:
    """GPUs of the Ray cluster this process is attached to; outside Ray, 1 when this machine has CUDA."""
    try:
        import ray

        if ray.is_initialized():
            return float(ray.cluster_resources().get("GPU", 0.0))
    except Exception:  # no cluster to ask: fall back to the local check
        pass
    from pipeline.transcribe import cuda_available

    return 1.0 if cuda_available() else 0.0
