"""The web kit: formatting, catalogues, CSRF tokens, page headers and HTML error pages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from pydantic import SecretStr

from loanfund.core.config import Settings
from loanfund.core.errors import InvalidInput
from loanfund.web import csrf, formatting, i18n, messages

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "loanfund" / "web"


def test_money_and_dates() -> None:
    assert formatting.money(Decimal("12345678.9")) == "12,345,678.90"
    assert formatting.money("95060000.00") == "95,060,000.00"
    assert formatting.money(1234567890, fen=True) == "12,345,678.90"
    assert formatting.money(-5, fen=True) == "-0.05"
    assert formatting.money(None) == "—"
    assert formatting.wan("95060000.00") == "9,506.00"
    assert formatting.wan(123456789, fen=True) == "123.46"
    assert formatting.iso_date(date(2021, 6, 30)) == "2021-06-30"
    # a UTC timestamp shows as its business date in Asia/Shanghai
    assert formatting.iso_date(datetime(2021, 6, 30, 17, 0, tzinfo=UTC)) == "2021-07-01"
    assert formatting.iso_date("2021-06-30T17:00:00+00:00") == "2021-07-01"
    assert formatting.percent("4.35") == "4.35%"


PARTS = sorted(p.stem for p in (WEB / "locale" / "zh_CN" / "LC_MESSAGES").glob("*.po"))


def _messages(part: str) -> set[str]:
    """The message ids used by one part of the pages: the kit (its templates and modules) or an
    audience's package (`web/<part>/`)."""
    dirs = [WEB / "templates"] if part == "kit" else [WEB / part]
    extra = {"portal": [WEB.parent / "applications" / "reasons.py"]}.get(part, [])
    method_map = [("**.py", "python"), ("**.html", "jinja2"), ("**.txt", "jinja2")]
    jinja = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    options = {"**.html": jinja, "**.txt": jinja}
    found: set[str] = set()
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    for d in dirs:
        for _, _, msg, _, _ in extract_from_dir(d, method_map, options, keywords=keywords):
            found.add(msg if isinstance(msg, str) else msg[0])
    for py in extra + (list(WEB.glob("*.py")) if part == "kit" else []):
        for _, _, msg, _, _ in extract_from_dir(py.parent, [(py.name, "python")], keywords=keywords):
            found.add(msg if isinstance(msg, str) else msg[0])
    return found


@pytest.mark.parametrize("part", PARTS)
def test_every_message_has_a_chinese_translation(part: str) -> None:
    """A text added to a template or to the error mapping without its translation fails here (run
    `make i18n`, then translate the new entries of the part's .po)."""
    used = _messages(part)
    assert used or part != "kit"
    with (WEB / "locale" / "zh_CN" / "LC_MESSAGES" / f"{part}.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(m for m in used if m not in translated)
    assert not missing, f"{part}.po lacks a translation for:\n" + "\n".join(missing)


def test_translations_switch_language() -> None:
    zh = i18n.translations("zh_CN")
    assert zh.gettext("This field is required.") == "此项为必填项。"
    assert i18n.translations("en").gettext("This field is required.") == "This field is required."
    assert i18n.normalise("zh-CN") == "zh_CN"
    assert i18n.normalise("en-GB") == "en"
    assert i18n.normalise("fr") is None


def test_error_codes_read_as_sentences() -> None:
    zh = i18n.translations("zh_CN").gettext
    assert (
        messages.sentence("rate_limited", zh, {"retry_after_s": 12})
        == "您所在网络的请求过于频繁，请等待 12 秒后再试。"
    )
    exc = InvalidInput(
        "The term may be at most 12 months",
        code="term_too_long",
        details=[{"field": "term_months", "message": "..."}],
    )
    assert messages.field_errors(exc, zh, max_term_months=12) == {"term_months": "期限最长为 12 个月。"}
    # an unmapped code still reads as a sentence, with the server's message beside its field
    odd = InvalidInput(
        "Region not served",
        code="region_closed",
        details=[{"field": "credit_code", "message": "Region not served"}],
    )
    assert messages.field_errors(odd, zh) == {"credit_code": "请求未能完成。 (Region not served)"}
    assert "Region not served" in messages.error_sentence(odd, zh)


def test_csrf_tokens_are_bound_to_their_cookie() -> None:
    settings = Settings(env="test", secret_key=SecretStr("k" * 40))
    other = Settings(env="test", secret_key=SecretStr("j" * 40))
    token = csrf.token_for(settings, "cookie-value-0123456789")
    assert csrf.check(settings, "cookie-value-0123456789", token)
    assert not csrf.check(settings, "another-cookie-0123456789", token)
    assert not csrf.check(other, "cookie-value-0123456789", token)
    assert not csrf.check(settings, None, token)
    assert not csrf.check(settings, "cookie-value-0123456789", "")


def test_pages_outside_the_api_are_html_with_page_headers(client: TestClient) -> None:
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no external host
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert '<html lang="zh-CN">' in r.text
    assert "该页面不存在。" in r.text
    # the API keeps its JSON envelope
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


def test_language_is_switched_and_remembered(client: TestClient) -> None:
    r = client.get("/no-such-page?lang=en")
    assert '<html lang="en">' in r.text
    assert "This page does not exist." in r.text
    assert r.cookies.get(i18n.COOKIE) == "en"
    again = client.get("/no-such-page")  # the cookie is sent back
    assert '<html lang="en">' in again.text
    back = client.get("/no-such-page?lang=zh-CN")
    assert '<html lang="zh-CN">' in back.text


def test_static_files_are_served_by_the_app(client: TestClient) -> None:
    css = client.get("/static/kit/kit.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    assert client.get("/static/kit/kit.js").status_code == 200
    for asset in ("htmx.min.js", "echarts.min.js"):  # from npm by `make assets`
        r = client.get(f"/static/vendor/{asset}")
        assert r.status_code == 200, f"{asset}: run `make assets`"
        assert len(r.content) > 10_000
