"""Helpers for Portico's end-to-end tests: HTTP client over raw sockets, in-process backends,
config writer, generated data streams. Standard library only."""
