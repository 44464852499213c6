"""The web server: Studio, the HTTP API with its SSE streams, and the demo API.

- ``app``: the application factory, ``create_app``;
- ``state``: what one worker shares between requests (store, channel, registry);
- ``security``, ``addresses``, ``proxies``: the host names served, trusted proxies,
  the token, Origin and Content-Type checks;
- ``errors``: the one JSON error shape;
- ``api`` (``/api``), ``studio`` (``/``), ``demo`` (``/demo``): the blueprints;
- ``executions``: live runs, a thread each, recorded as they go;
- ``sse``: the event stream; ``disconnect``: noticing a client that went away;
- ``memory``: giving freed heap back after a spike; ``serving``: gunicorn tuning;
- ``prometheus``: ``/metrics`` (the figures are ``flowrun.metrics``).
"""
