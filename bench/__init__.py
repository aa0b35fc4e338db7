"""Calcifer's benchmark harness: a fake OpenAI upstream, wrk load, and a report (`python -m bench.run`)."""
