"""Signals other apps (alerts) listen to.

`sweep_done` is sent once per host after a collector sweep's samples are stored
(after the transaction commits), with kwargs:
  host_id        the Host's pk
  at             the sweep's timestamp (aware datetime, the samples' `at`)
  container_ids  the Container pks that got a sample in this sweep (list of int)
"""

from django.dispatch import Signal

sweep_done = Signal()
