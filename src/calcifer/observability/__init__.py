"""Logging and metrics, kept off the response path."""
