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
"""
