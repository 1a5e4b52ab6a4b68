"""One's own second factor, set by hana, a member."""

from regflow.testing.scenarios.admin import policy

SCENARIO = policy("set_two_factor", "hana@example.jp")
