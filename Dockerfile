# Browser assets (htmx, ECharts) from the npm registry, pinned by package-lock.json.
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
COPY tools/vendor-assets.mjs ./tools/
RUN mkdir -p src/loanfund/web/static && npm ci --no-audit --no-fund --ignore-scripts && node tools/vendor-assets.mjs

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LOANFUND_PROJECT_ROOT=/app

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY --from=assets /build/src/loanfund/web/static/vendor ./src/loanfund/web/static/vendor
COPY migrations ./migrations
RUN pip install . && useradd --system --uid 10001 loanfund
USER loanfund

EXPOSE 8000
# Migrations first (the app never creates tables), then the server.
CMD ["sh", "-c", "loanfund db upgrade && exec loanfund serve --host 0.0.0.0 --port 8000 --workers ${LOANFUND_WORKERS:-2}"]
