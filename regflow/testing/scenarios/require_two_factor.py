"""The customer's two-factor policy, set by its admin."""

from regflow.testing.scenarios.admin import DEMOTED, policy

SCENARIO = policy("require_two_factor", "taro@example.jp", still_admin={"false": [DEMOTED]})
