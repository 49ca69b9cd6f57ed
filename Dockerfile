# Companion bot: docker build -t companion . && docker compose up -d
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COMPANION_DB=/data/companion.db COMPANION_WEB_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY memory ./memory
COPY personas ./personas
RUN pip install --no-cache-dir ".[postgres]" && useradd --system --home /data companion && mkdir -p /data \
    && chown companion /data
USER companion
VOLUME ["/data"]
# Health endpoint in webhook mode: GET /healthz on COMPANION_WEBHOOK_LISTEN (default 0.0.0.0:8080)
EXPOSE 8080
# The Mini App (when COMPANION_WEB_URL or COMPANION_WEB_PORT is set): /app on port 8081
EXPOSE 8081
STOPSIGNAL SIGTERM
CMD ["companion", "run"]
