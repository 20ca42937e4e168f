"""What ``gridbot status`` and ``gridbot elections`` show, and how a running daemon publishes it.

Each process writes a small JSON status document to the store (its teams, their connection
state, last event time and error) every few seconds with a TTL, so a process that dies drops out
of ``gridbot status`` by itself. With Redis the CLI reads those documents and the elections from
Redis directly; the in-memory store lives inside the daemon, so there the CLI asks the daemon's
``/status`` endpoint, which needs ``[http] port``. Documents hold ids and states, never tokens.

* :mod:`gridbot.status.snapshot`: the process document and the election rows (the daemon side).
* :mod:`gridbot.status.publisher`: the task that writes the document to the store.
* :mod:`gridbot.status.gather`: reading a deployment from Redis or ``/status``; pinning elections.
* :mod:`gridbot.status.render`: the readable tables.
* :mod:`gridbot.status.cli`: the ``gridbot status`` and ``gridbot elections`` commands.
"""
