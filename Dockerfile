# syntax=docker/dockerfile:1
# lwa-accounts: build the wheel in one stage, run it from a venv in a slim one.
#   docker build -t lwa-accounts .
#   docker run --rm --env-file lwa-accounts.env lwa-accounts db upgrade     # migrations, once
#   docker run -d -p 8000:8000 --env-file lwa-accounts.env lwa-accounts     # serve
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
RUN python -m pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/lwa-accounts/bin:$PATH
# Every dependency ships wheels for this Python: no compiler is installed in this stage.
COPY --from=builder /dist/ /tmp/dist/
RUN python -m venv /opt/lwa-accounts \
    && /opt/lwa-accounts/bin/pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 lwa \
    && useradd --system --uid 10001 --gid lwa --home-dir /var/lib/lwa-accounts \
       --create-home --shell /usr/sbin/nologin lwa
USER lwa:lwa
WORKDIR /var/lib/lwa-accounts
ENV LWA_ACCOUNTS_ENV=production \
    LWA_ACCOUNTS_DATA_DIR=/var/lib/lwa-accounts
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
# uvicorn's parent drains its workers on SIGTERM (docker stop); give it the grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["lwa-accounts"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
