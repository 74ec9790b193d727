"""Secrets out of everything prewarm shows: command output, error messages and logs.

One helper for all of them. `redact(text)` masks

- the password of every URL in the text (`postgresql://app:***@db/prewarm`), also when the
  password holds an `@` or a `/` that the URL parser would split on (everything up to the last
  `@` of the URL is taken as user info: masking too much is the safe side);
- every value remembered as secret: what `${VAR}` expanded to in the config when VAR's name
  looks secret (PASSWORD, TOKEN, KEY, ...), the passwords of the URLs the config holds, and
  the tokens providers read from the environment (`api_token_env`); each also as it shows
  inside JSON.

`url(text)` renders one URL with its password hidden: SQLAlchemy's own rendering where the URL
parses cleanly, the pattern above where it does not.
"""
from __future__ import annotations

import json
import re
import threading

MASK = "***"
MIN_SECRET_LEN = 4  # shorter values would mask ordinary words all over the output

# A variable name that says it holds a secret.
SECRET_NAME = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SIGNATURE", re.I)

# scheme://user:password@ ... up to the last @ before the next blank or quote.
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<password>[^\s'\"]*)@"
                           r"(?=[^\s@'\"]*(?:[\s'\"]|$))")

_lock = threading.Lock()
_secrets: set[str] = set()


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def remember(value: str | None) -> None:
    """Mask `value` wherever it appears from now on (this process)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)
            _secrets.add(json.dumps(value)[1:-1])  # as it shows inside JSON, quotes escaped


def forget_all() -> None:
    """Tests: start from no remembered secrets."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # a secret inside a longer one: longest first
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return _URL_USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@" if m.group("password") != MASK
                             else m.group(0), text)


def url(text: str) -> str:
    """One URL, its password hidden."""
    if text.count("@") <= 1:
        try:
            from sqlalchemy.engine import make_url
            return redact(make_url(text).render_as_string(hide_password=True))
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: the pattern below
            pass
    return redact(text)


def url_password(text: str) -> str | None:
    """The password of a URL, also one holding an `@` (for `remember`)."""
    m = _URL_USERINFO.search(text)
    return m.group("password") if m else None


__all__ = ["MASK", "looks_secret", "remember", "redact", "url", "url_password", "forget_all"]
