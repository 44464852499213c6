"""HTTP for steps: the client and the network guard.

- ``client``: ``Client`` sends one execution's requests on one ``requests.Session``
  (cookies carry over), with bounded bodies and clear error messages;
- ``guard``: ``NetworkGuard`` refuses blocked or disallowed targets, checking the
  address actually connected to (redirects too);
- ``forms``: form encoding of object bodies.
"""
