"""The domain: pure types, ports, routing, pricing, cost and gateway orchestration.

Nothing here knows HTTP, SQL or any vendor; adapters implement the ports in `ports.py`.
"""
