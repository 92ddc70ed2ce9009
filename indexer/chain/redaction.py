"""Text about a provider with the secrets of its URL taken out, for messages, logs and traces.

`public_url` shows a provider as `scheme://host[:port]`, but other text reaches our messages
too: aiohttp's own exceptions spell out the whole URL, and a provider's error page or JSON-RPC
error may echo the URL, or just the key, back. A `Redactor` hides every part of the URL that
`public_url` leaves out (user-info, path segments, query keys and values, fragment), however it
is spelled (as configured, percent-decoded, or as yarl and so aiohttp write it).
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qsl, unquote, urlsplit

import yarl

from indexer.public_url import public_url

# Path words shorter than this ("v3", "rpc", "eth") are not keys, and hiding every "rpc" would
# garble messages; provider keys are 16 to 64 characters.
SHORTEST_SECRET = 6
HIDDEN = "***"


def _spellings(url: str) -> set[str]:
    spellings = {url, unquote(url)}
    with contextlib.suppress(TypeError, ValueError):  # as aiohttp writes it in its errors
        spellings.add(str(yarl.URL(url)))
    return spellings


def url_secrets(url: str) -> set[str]:
    """The parts of `url` that `public_url` hides, each as it could appear in text."""
    secrets: set[str] = set()
    for spelling in _spellings(url):
        try:
            parts = urlsplit(spelling)
        except ValueError:
            secrets.add(spelling)  # unparseable: hide it whole, wherever it is echoed
            continue
        secrets.update((parts.username or "", parts.password or "", parts.fragment, parts.query))
        secrets.update(parts.path.split("/"))
        secrets.update(piece for pair in parse_qsl(parts.query, True) for piece in pair)
        secrets.update(re.split("[&=;]", parts.query))
    return {secret for secret in secrets if len(secret) >= SHORTEST_SECRET}


class Redactor:
    """Hides one provider URL's secrets in text; `public` is what may be shown of the URL."""

    def __init__(self, url: str) -> None:
        self.public = public_url(url)
        secrets = sorted(url_secrets(url), key=len, reverse=True)  # longest first
        self._pattern = (
            re.compile("|".join(map(re.escape, secrets)), re.IGNORECASE) if secrets else None
        )

    def scrub(self, text: str | bytes, limit: int = 200) -> str:
        """`text` without the URL's secrets, then cut to `limit` characters.

        Cut after hiding, never before: a key cut in half would no longer be recognised.
        """
        if isinstance(text, bytes | bytearray):  # an answer is read into a bytearray
            text = text.decode("utf-8", "replace")
        if self._pattern is not None:
            text = self._pattern.sub(HIDDEN, text)
        return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"

    def snippet(self, body: str | bytes, limit: int = 200) -> str:
        """A provider's body for a message: scrubbed, cut, quoted."""
        return repr(self.scrub(body, limit))
