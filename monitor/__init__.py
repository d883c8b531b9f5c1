"""Public-statement misinformation monitor: collectors, pipeline, storage, scheduler and CLI."""

__version__ = "0.1.0"
