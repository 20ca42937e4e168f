# gridbot as a container: slim Python 3.11, the package installed, a non-root user, readiness
# as the health check. The config is mounted at /etc/gridbot/gridbot.toml (read-only) and refers
# to tokens as ${ENV_VAR}; the tokens come from the environment, never from the image.
#
#   docker build -t gridbot .
#   docker run --rm -e SLACK_BOT_TOKEN_T1=xoxb-... \
#     -v "$PWD/config/gridbot.toml:/etc/gridbot/gridbot.toml:ro" gridbot

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gridbot ./gridbot
COPY plugins ./plugins
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install .

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 gridbot \
 && useradd --system --uid 10001 --gid gridbot --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gridbot
COPY --from=build /install /usr/local
USER 10001:10001
# The operations endpoint: set [http] host = "0.0.0.0" and port = 8080 in the config.
EXPOSE 8080
# 503 (not ready) makes urlopen raise, so the check fails; the first minute is start-up.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["gridbot"]
CMD ["run", "--config", "/etc/gridbot/gridbot.toml"]
