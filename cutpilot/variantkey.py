"""Variant keys: the short stable id that ties a platform's ad back to the cut cutpilot made.

Users name their platform ads with `ad_name(...)`; every platform export carries that name, so the key parsed back
out of it (`parse`) finds the variant's shots without any platform integration. A key is 'CP' + 7 characters of
Crockford base32 (no I, L, O, U: nothing a marketer can misread or mistype into another valid key), derived from
the run's identity, so re-making the same variant gives the same key.
"""

from __future__ import annotations

import hashlib
import re

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 7
_PATTERN = re.compile(r"(?<![0-9A-Za-z])CP[-_]?([0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{7})(?![0-9A-Za-z])", re.IGNORECASE)


def make_key(identity: str) -> str:
    """'CP' + 7 base32 characters of the identity's sha256 (35 bits: collisions are rare across a brand's ads)."""
    n = int.from_bytes(hashlib.sha256(identity.encode("utf-8")).digest()[:5], "big")
    chars = []
    for _ in range(LENGTH):
        n, r = divmod(n, 32)
        chars.append(ALPHABET[r])
    return "CP" + "".join(reversed(chars))


def parse(ad_name: str) -> str | None:
    """The variant key inside a platform ad name ('…_CP7K3Q9AX', 'cp-7k3q9ax …'), upper-cased; None without one."""
    m = _PATTERN.search(ad_name or "")
    return "CP" + m.group(1).upper() if m else None


def ad_name(key: str, *, product: str | None, audience: str | None, duration_s: float, aspect: str) -> str:
    """The suggested platform ad name: readable parts, then the key last (platforms truncate long names from the
    end less often than they show it, and the parser finds the key anywhere)."""
    def part(s: str | None) -> str:
        return re.sub(r"[\s/\\|,;:]+", "-", (s or "").strip())[:24].strip("-")

    bits = [part(product), part(audience), f"{round(duration_s)}s", aspect.replace(":", "x"), key]
    return "_".join(b for b in bits if b)
