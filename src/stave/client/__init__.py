"""The Python client of a stave server: submit, read, follow, and prove events."""

from stave.client.http import ServerError, StaveClient, Submitted

__all__ = ["ServerError", "StaveClient", "Submitted"]
