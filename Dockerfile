# syntax=docker/dockerfile:1
# Production image: MONGODB_URL (real MongoDB 7+) and JWT_SECRET are required at run time.

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --upgrade pip && pip install .

FROM python:3.12-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    MEDIA_DIR=/data/media
RUN groupadd --system app && useradd --system --gid app --home-dir /srv --shell /usr/sbin/nologin app \
    && mkdir -p /data/media && chown -R app:app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=app:app migrations ./migrations
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status == 200 else 1)"
CMD ["amour-florals", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
