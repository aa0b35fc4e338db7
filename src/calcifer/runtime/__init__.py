"""What several adapters share at run time: deadlines for awaits, the best-effort Redis client."""
