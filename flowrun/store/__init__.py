"""What outlives a request: history, the control channel, and secrets kept out of both.

- ``history``: ``Store``, every execution and step record in SQLite (WAL), written
  as the run goes, in group commits under gevent;
- ``control``: the channel that carries stop, answers and ``continue`` to the
  worker (or host) holding an execution: SQLite rows, or Redis;
- ``postgres``, ``pghistory``, ``pgcontrol``, ``leases``: the same history and
  channel in PostgreSQL, shared by several hosts (``FLOWRUN_DATABASE_URL``), and the
  leases that tell them a host died;
- ``gather``: many runs' stop checks answered by one query;
- ``stops``: the shared stop counter that spares a table read before each step;
- ``masking``: secrets replaced in what is stored;
- ``sealing``: secret prompt answers sealed while they wait in the channel.
"""
