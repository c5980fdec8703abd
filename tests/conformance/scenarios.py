"""The one list of conformance scenarios, shared by the local suite and the S3 suite (tests/s3)."""

from __future__ import annotations

from .harness import Scenario
from .scenarios_files import SCENARIOS as FILE_SCENARIOS
from .scenarios_session import SCENARIOS as SESSION_SCENARIOS

SCENARIOS: list[Scenario] = SESSION_SCENARIOS + FILE_SCENARIOS
BY_ID: dict[str, Scenario] = {sc.id: sc for sc in SCENARIOS}
