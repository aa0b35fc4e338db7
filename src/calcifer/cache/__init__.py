"""Response cache adapters: in memory (one replica) and Redis (shared by every replica)."""
