"""One's own second factor (SPEC 4.1a), set by hana, a member."""

from regflow.testing.scenarios.admin import policy

SCENARIO = policy("set_two_factor", "hana@example.jp")
