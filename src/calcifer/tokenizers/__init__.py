"""Offline token counters (the `TokenCounter` port) for usage a provider did not report."""
