"""The HTTP edge: ASGI app pieces, wire validation, SSE, the error table and middleware."""
