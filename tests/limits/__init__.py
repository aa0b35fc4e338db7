"""Contract tests of the Limiter adapters."""
