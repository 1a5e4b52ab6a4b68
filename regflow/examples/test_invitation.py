"""Every approved path of the invitation flow, replayed and compared step by step."""

from pathlib import Path

import pytest

from regflow.testing import check_path, regflow_approved

HERE = Path(__file__).parent
APPROVED = regflow_approved(HERE / "invitation.yaml", HERE / "invitation_scenario.yaml")


@pytest.mark.parametrize("path", APPROVED)
def test_invitation(path, regflow_engine):
    check_path(regflow_engine(path), path)
