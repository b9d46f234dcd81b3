"""callaudit pipeline: framework-free stages that turn a call recording into an audit record."""

__version__ = "0.1.0"
# Part of every record's idempotency key: bump when a stage changes what it produces.
PIPELINE_VERSION = "p1"
