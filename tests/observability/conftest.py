from tests.routing.conftest import routed  # noqa: F401  (the gateway with two deployments of gpt-4o)
