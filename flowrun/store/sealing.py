"""Secret prompt answers sealed on their way through the control channel.

An answer may reach a worker other than the one whose run waits for it; it then
waits in the channel (a row of the ``controls`` table, or a Redis message) until the
run's worker picks it up. A run that asks for a secret (a key that looks secret,
``looks_secret``, or is named in ``FLOWRUN_SECRET_VARS``) makes a key pair for that
prompt, keeps the private key in memory and records the public one in the channel;
the worker that receives the answer seals each secret value to it (libsodium's
sealed box, through PyNaCl), so the database and Redis never hold it in clear. The
run's worker opens it, and the channel forgets the answer once it is delivered.
"""

from __future__ import annotations

import base64
import json

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from flowrun.store.masking import looks_secret

SEALED = "$sealed"  # {"$sealed": "<base64>"} stands for a sealed value


class PromptKey:
    """The key pair of one secret prompt; the private key never leaves memory."""

    def __init__(self):
        self._private = PrivateKey.generate()
        self.public = base64.b64encode(bytes(self._private.public_key)).decode()

    def open(self, values: dict) -> dict:
        """``values`` with each sealed value opened; one that does not open (sealed
        to another key) is left out, so the prompt reports it missing."""
        box = SealedBox(self._private)
        opened = {}
        for key, value in values.items():
            if not _is_sealed(value):
                opened[key] = value
                continue
            try:
                raw = box.decrypt(base64.b64decode(value[SEALED]))
            except (CryptoError, ValueError, TypeError):
                continue
            opened[key] = json.loads(raw)
        return opened


def secret_keys(keys, secret_vars) -> list[str]:
    """The prompt keys whose answers are secrets."""
    return [k for k in keys if k in secret_vars or looks_secret(k)]


def seal(values: dict, public: str | None, secret_vars) -> dict:
    """``values`` with each secret answer sealed to ``public`` (None: as they are)."""
    if public is None:
        return values
    box = None
    sealed = {}
    for key, value in values.items():
        if key in secret_vars or looks_secret(key):
            if box is None:
                box = SealedBox(PublicKey(base64.b64decode(public)))
            raw = json.dumps(value).encode()
            value = {SEALED: base64.b64encode(box.encrypt(raw)).decode()}
        sealed[key] = value
    return sealed


def _is_sealed(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and SEALED in value
