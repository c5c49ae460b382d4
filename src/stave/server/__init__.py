"""The HTTP server (``stave serve``): ingest, reads, the log as tlog-tiles, media, operations."""
