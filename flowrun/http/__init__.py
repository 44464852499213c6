"""HTTP for steps: the client, its connections and the network guard.

- ``client``: ``Client`` sends one execution's requests on one ``requests.Session``
  (cookies carry over), each within its step's deadline, with bounded bodies and
  clear error messages;
- ``connections``: the urllib3 connection classes the client uses: tracked by its
  ``Flight``, and pinned to the addresses the guard checked;
- ``flight``: the request in flight, its deadline, and ``abort``;
- ``guard``: ``NetworkGuard`` refuses blocked or disallowed targets, checking the
  address actually connected to (redirects too);
- ``headers``: a faster parser of response headers, where this Python allows it;
- ``forms``: form encoding of object bodies.
"""
