"""Languages: Chinese (zh-CN) by default, English on request.

Message ids are English; a translator edits `locale/zh_CN/LC_MESSAGES/<domain>.po`, one catalogue per
part of the pages (`kit`, `portal`, `console`: `make i18n` extracts each part's messages and updates its
catalogue). English needs no catalogue: an id is its own translation, though an `en` catalogue may
reword one. The `.po` files are the only source: each process compiles them in memory the first time a
language is used (Babel's `read_po` then `write_mo`), so there is no `.mo` to build at install time or
to keep in step.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request

LOCALE_DIR: Final = Path(__file__).parent / "locale"
DEFAULT_LOCALE: Final = "zh_CN"
LOCALES: Final = ("zh_CN", "en")
COOKIE: Final = "lf_lang"
# the `lang` attribute of each language and the name it is offered under, in itself
LANG_TAGS: Final = {"zh_CN": "zh-CN", "en": "en"}
NATIVE_NAMES: Final = {"zh_CN": "中文", "en": "English"}


def normalise(value: str | None) -> str | None:
    """A supported locale for `zh-CN`, `zh_cn`, `zh`, `en-GB`…, else None."""
    if not value:
        return None
    v = value.strip().replace("-", "_").lower()
    for loc in LOCALES:
        if v == loc.lower() or v.split("_")[0] == loc.split("_")[0].lower():
            return loc
    return None


def locale_of(request: Request) -> str:
    """The reader's language: `?lang=` on this request, else the language cookie, else zh-CN."""
    return (
        normalise(request.query_params.get("lang"))
        or normalise(request.cookies.get(COOKIE))
        or DEFAULT_LOCALE
    )


def _compile(po: Path, locale: str) -> Translations:
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=po.stem)


@cache
def translations(locale: str) -> NullTranslations:
    """Every catalogue of `locale` merged into one (compiled once per process)."""
    merged: NullTranslations | None = None
    for po in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        compiled = _compile(po, locale)
        if merged is None:
            merged = compiled
        else:
            assert isinstance(merged, Translations)
            merged.merge(compiled)
    return merged if merged is not None else NullTranslations()
