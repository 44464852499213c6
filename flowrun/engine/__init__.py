"""The engine: a validated flow plus run options → an ordered stream of events.

Pure and synchronous (no Flask). Every front door (the SSE endpoint, the
non-streaming endpoint, Try it out, the CLI) consumes the events of ``run.Run``.

- ``flow``: the document in memory (legacy spellings folded in), run options;
- ``validation`` (and ``flow.schema.json``): checking a document before it runs;
- ``placeholders`` and ``paths``: ``{{ … }}`` values and the PATH grammar;
- ``checks``: validations (does a response pass?) and conditions (run a node?);
- ``jq`` and ``jq_helper``: jq programs in helper processes that can be killed;
- ``controls``: how a caller steers a run (stop, answers, continue);
- ``events``: the events a run yields; ``run``: the run itself.
"""
