"""The dedup stage: every delivery asks one question, "does this delivery get handled?".

* The responsible team's delivery claims the event and is dispatched.
* A copy that arrives after that is a duplicate.
* A standby team's copy is held for ``standby_grace`` seconds. If by then nobody has claimed the
  event (the responsible team's socket was down and RTM does not replay), the standby claims and
  handles it itself, and if the responsible team's heartbeat has lapsed, takes over the election.
  The claim is atomic in the store, so whatever races, an event is handled once.

Four objects, each with a narrow interface:

* :class:`Intake` (``intake.py``): the one entry for transports, :meth:`Intake.offer`. It merges
  the copies of one event, queues questions in per-conversation lanes and closes above a
  high-water mark (the links then stop reading, so TCP pushes back).
* ``ClaimedKeys`` (``claimed.py``): the bounded memory of events known to be claimed, so a
  late copy is a duplicate without a round trip; with ``ResponsibleHints``; both owned by the intake.
* ``Standby`` (``standby.py``, owned by the decider): standby copies held out the grace period,
  and their rescue.
* :class:`Decider` (``decider.py``): the worker that takes batches from the intake, asks the store
  in one round trip, settles each question and hands the chosen copy to the dispatcher.
"""

from gridbot.dedup.counters import Counters
from gridbot.dedup.decider import Decider
from gridbot.dedup.intake import Intake

__all__ = ["Counters", "Decider", "Intake"]
