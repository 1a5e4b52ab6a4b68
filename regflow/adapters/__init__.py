"""Store adapters: the Store port in memory (MemoryStore) and on SQL databases (PeeweeStore)."""
