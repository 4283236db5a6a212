"""The web kit shared by the pages for people (the enterprise portal, the bureau console).

- `templating`: one Jinja2 environment per language over the kit's templates and each audience's own;
  `Templates.render` answers a page with its security headers (CSP without any external source,
  `Referrer-Policy: no-referrer`, `Cache-Control: no-store`);
- `i18n`: zh-CN by default, English switchable; the catalogues are `locale/*/LC_MESSAGES/messages.po`,
  compiled in memory when a process starts (docs/adr/0012-web-kit.md);
- `messages`: the one mapping from API error codes (and form validation errors) to sentences;
- `formatting`: amounts as `12,345,678.90` (元) or in 万元, dates as `YYYY-MM-DD`;
- `csrf`: a signed double-submit token for every state-changing form;
- `pages.install`: static files, the language switch and HTML error pages for everything outside `/api/`.

Pages call the same service functions and pydantic schemas as the API; nothing here knows a business rule.

An audience (`web/portal/`, `web/console/`) is a package with `router.py` (an `APIRouter` with
`include_in_schema=False`), `templates/<audience>/…` and `static/`, included in `app.py` after
`pages.install(app)`:

    templates = Templates(Path(__file__).parent / "templates")   # its own templates, then the kit's
    router = APIRouter(include_in_schema=False)
    pages.mount_static(app, "<audience>", Path(...) / "static")   # served at /static/<audience>/

    @router.post("/thing")
    def post_thing(request: Request, session: DbSession, form: csrf.FormData) -> Response:
        csrf.verify(request, form)                    # 403 `csrf_failed` without the form's token
        try:
            data = ThingCreate.model_validate(...)    # the API's schema
            service.do(session, ...)                  # the API's service
        except ValidationError as err:
            errors = validation_errors(err, gettext_for(request), field_name)
        except LoanfundError as exc:
            errors = field_errors(exc, gettext_for(request), field_name)
        return templates.render(request, "<audience>/thing.html", {...})

Templates extend `kit/base.html` (blocks `title`, `head`, `scripts`, `nav`, `main`, `footer`,
`lang_switch`), import `kit/forms.html` (`field`, `select`, `checkbox`, `error_summary`, `csrf_input`)
and use the filters `money`, `wan`, `iso_date`, `percent`. Scripts go in files under `static/` (the CSP
allows nothing inline); htmx and ECharts are at `/static/vendor/htmx.min.js` and
`/static/vendor/echarts.min.js`. Each audience has its own catalogue `locale/zh_CN/LC_MESSAGES/<audience>.po`
(add it to `make i18n`). Browser tests use the fixtures of `tests/live.py`.
"""
