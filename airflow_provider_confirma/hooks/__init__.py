"""Hooks: the HTTP client of the Confirma partner API."""
