"""Every path of the invitation flow, replayed with I1–I5 checked after each step."""

from pathlib import Path

import pytest

from regflow.testing import regflow_paths, run_path

HERE = Path(__file__).parent


@pytest.mark.parametrize("path", regflow_paths(HERE / "invitation.yaml", HERE / "invitation_scenario.yaml"))
def test_invitation(path, regflow_engine):
    run_path(regflow_engine(path), path)
