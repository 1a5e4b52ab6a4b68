"""The scenarios of the built-in flows: one module per flow, each a ``SCENARIO`` dict in the
same shape as a user's TOML or YAML scenario file (see ``regflow.testing.scenario``)."""
