"""Adapters of the `Limiter` port: in the process (`MemoryLimiter`) or shared in Redis (`RedisLimiter`)."""
