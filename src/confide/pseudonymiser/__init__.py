"""The pseudonymiser: the trusted third party that opens sealed identifiers and issues pseudonyms.

It holds the keys (the box key that opens identity batches, the HMAC key ring that makes
pseudonyms) and the linkage index; it never sees clinical data. Other parties use only
``Pseudonymiser`` (from ``confide.pseudonymiser.service``) and ``public_key``.
"""

from confide.pseudonymiser.service import Pseudonymiser, public_key

__all__ = ["Pseudonymiser", "public_key"]
