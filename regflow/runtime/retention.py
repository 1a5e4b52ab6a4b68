"""How long what regflow stores is kept once it is of no more use (``regflow purge``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from regflow.ground.records import Cutoffs
from regflow.runtime.limits import Limits

DAY = 24 * 3600


@attrs.frozen
class Retention:
    """Seconds each kind of row is kept after it ended; the journal is kept much longer (it is
    the audit trail), the secrets-bearing rows (codes, mail bodies) only briefly.

    - ``flows``: ended flows (completed, cancelled, expired, failed), with their codes and
      remembered answers, after their last change;
    - ``codes``: used, void or expired codes of any flow, after they were issued;
    - ``sessions``: sessions after they expired (ended ones are deleted at once);
    - ``mail``: sent, failed and decoy mail after it was written (bodies of sent and failed mail
      are emptied at once; the row stays as the record of a delivery);
    - ``idempotency``: remembered answers to an Idempotency-Key;
    - ``limit_hits``: counted attempts, at least as long as the longest limit window;
    - ``journal``: journal entries.
    """

    flows: int = 30 * DAY
    codes: int = 1 * DAY
    sessions: int = 1 * DAY
    mail: int = 7 * DAY
    idempotency: int = 1 * DAY
    limit_hits: int = 2 * DAY
    journal: int = 400 * DAY

    def cutoffs(self, now: datetime, limits: Limits) -> Cutoffs:
        """The instants before which rows go, as of ``now``."""

        def before(seconds: int) -> datetime:
            return now - timedelta(seconds=seconds)

        return Cutoffs(
            flows=before(self.flows), codes=before(self.codes), sessions=before(self.sessions),
            mail=before(self.mail), idempotency=before(self.idempotency),
            limits=before(max(self.limit_hits, limits.longest)), journal=before(self.journal),
        )
