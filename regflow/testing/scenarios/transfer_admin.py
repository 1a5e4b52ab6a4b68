"""Transfer the admin role; jiro is not ready yet."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("transfer_admin", target_ready={"false": [
    {"context": {"target": "$login:jiro@example.jp"}, "note": "jiro is still being set up"}]})
