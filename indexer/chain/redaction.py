"""Text about a provider with the secrets of its URL taken out, for messages, logs and traces.

`public_url` shows a provider as `scheme://host[:port]`, but other text reaches our messages
too: aiohttp's own exceptions spell out the whole URL, and a provider's error page or JSON-RPC
error may echo the URL, or just the key, back. A `Redactor` hides every part of the URL that
`public_url` leaves out (user-info, path segments, query values, fragment), however it is
spelled (as configured, percent-decoded, or as yarl and so aiohttp write it), and however short:
a key of two characters is a key. What stays visible is what is no secret: an API version in
the path (the `v3` of `/v3/KEY`) and the name of a query parameter that has a value (the `key`
of `?key=KEY`), so a message still says which route and parameter a provider refused.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import parse_qsl, unquote, urlsplit

import yarl

from indexer.public_url import public_url

# A secret this long is hidden wherever it appears, even inside a longer word (a key glued to
# other text). A shorter one ("k1", "abc") only where it stands on its own, no key character
# touching it: hiding every "abc" inside "abcd" would garble messages without hiding a key.
HIDDEN_ANYWHERE = 6
# A path segment that is an API version (Infura's /v3/KEY, Alchemy's /v2/KEY) is no key.
API_VERSION = re.compile(r"v[0-9]{1,2}", re.IGNORECASE)
# What a key is made of; a percent-escape before a short secret ("%2Fk1") still separates it.
_ALONE_BEFORE = "(?:(?<![A-Za-z0-9_-])|(?<=%[0-9A-Fa-f]{2}))"
_ALONE_AFTER = "(?![A-Za-z0-9_-])"
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
        secrets.update((parts.username or "", parts.password or "", parts.fragment))
        secrets.update(s for s in parts.path.split("/") if not API_VERSION.fullmatch(s))
        # A parameter's value; a parameter without one (`?KEY`) is the key itself.
        secrets.update(value or name for name, value in parse_qsl(parts.query, True))
        for parameter in re.split("[&;]", parts.query):
            name, equals, value = parameter.partition("=")
            secrets.add(value if equals else name)
    return {secret for secret in secrets if secret.strip()}


def secrets_pattern(secrets: set[str]) -> re.Pattern[str] | None:
    """One pattern for every secret: long ones anywhere, short ones where they stand alone;
    longest first, so a key is hidden whole, not a shorter secret inside it."""
    ordered = sorted(secrets, key=lambda secret: (-len(secret), secret))
    anywhere = [re.escape(s) for s in ordered if len(s) >= HIDDEN_ANYWHERE]
    alone = [re.escape(s) for s in ordered if len(s) < HIDDEN_ANYWHERE]
    if alone:
        anywhere.append(f"{_ALONE_BEFORE}(?:{'|'.join(alone)}){_ALONE_AFTER}")
    return re.compile("|".join(anywhere), re.IGNORECASE) if anywhere else None


class Redactor:
    """Hides one provider URL's secrets in text; `public` is what may be shown of the URL."""

    def __init__(self, url: str) -> None:
        self.public = public_url(url)
        self._pattern = secrets_pattern(url_secrets(url))

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
