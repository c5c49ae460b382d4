"""stave: a verifiable event store for music metadata."""

__version__ = "0.1.0"
