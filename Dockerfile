# ftpd as a container: docs/DOCKER.md explains every choice below (port 2121, passive range, UID).
#
#   docker build -t ftpd .
#   docker run -p 21:2121 -p 21000-21049:21000-21049 -e PASV_ADDRESS=<host address> -v ftp-data:/data ftpd
#
# Two stages: "build" turns the source into wheels (ftpd plus its dependencies) and installs them
# into a virtual environment; the runtime stage copies only that environment, so no source tree,
# wheel cache or build tool ends up in the image. Both stages use the same base, so the venv's
# interpreter path is valid in both. Bump the tag (or pin a digest) to pick up Python fixes.

FROM python:3.12.10-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml ./
COPY ftpd ./ftpd
# prometheus-client (the "metrics" extra) is pure Python and ~100 KiB: shipping it lets users turn
# metrics on with FTPD_METRICS_PORT alone. S3 storage needs the "s3" extra too:
#   docker build --build-arg FTPD_EXTRAS=metrics,s3 -t ftpd .
ARG FTPD_EXTRAS=metrics
RUN pip wheel --wheel-dir /wheels ".[${FTPD_EXTRAS}]" \
    && python -m venv /opt/ftpd \
    && /opt/ftpd/bin/pip install --no-index --find-links /wheels "ftpd[${FTPD_EXTRAS}]" \
    && /opt/ftpd/bin/pip uninstall --yes pip setuptools

FROM python:3.12.10-slim-bookworm
ARG FTPD_UID=1000
ARG FTPD_GID=1000
LABEL org.opencontainers.image.title="ftpd" \
      org.opencontainers.image.description="An asyncio FTP server" \
      org.opencontainers.image.licenses="MIT"
# A fixed, numeric, non-root identity (build args to match the owner of a host directory). The
# entries are written directly: the slim base needs no useradd for two lines. /var/log/ftpd is
# for an optional xferlog file (FTPD_XFERLOG_FILE=/var/log/ftpd/xferlog on a volume).
RUN echo "ftpd:x:${FTPD_GID}:" >> /etc/group \
    && echo "ftpd:x:${FTPD_UID}:${FTPD_GID}:ftpd:/data:/usr/sbin/nologin" >> /etc/passwd \
    && mkdir -p /data /var/log/ftpd \
    && chown "${FTPD_UID}:${FTPD_GID}" /data /var/log/ftpd
COPY --from=build /opt/ftpd /opt/ftpd
# Everything is configured through FTPD_* variables (and the aliases in docs/DOCKER.md).
# - Port 2121, not 21: a non-root process binds it with no capability under any runtime (host
#   networking, --cap-drop ALL, rootless, restricted Kubernetes). Publish it as 21 (-p 21:2121).
# - A 50-port passive range, set through the alias variables so that a user's PASV_MIN_PORT /
#   PASV_MAX_PORT or FTPD_PASV_PORTS replaces it. Docker publishes each port with its own proxy,
#   so the range is kept small; it must be published 1:1.
# - shutdown_grace 8 s: transfers still running after SIGTERM get 426 and the process exits 0
#   before Docker's default 10 s stop timeout turns into SIGKILL.
ENV PATH=/opt/ftpd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FTPD_HOST=0.0.0.0 \
    FTPD_PORT=2121 \
    FTPD_ROOT=/data \
    FTPD_SHUTDOWN_GRACE=8 \
    PASV_MIN_PORT=21000 \
    PASV_MAX_PORT=21049
WORKDIR /data
VOLUME ["/data"]
EXPOSE 2121/tcp 21000-21049/tcp
USER ${FTPD_UID}:${FTPD_GID}
STOPSIGNAL SIGTERM
# `ftpd healthcheck` connects to the configured port, expects 220 and QUITs: no curl/nc needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["ftpd", "healthcheck"]
ENTRYPOINT ["ftpd"]
CMD ["serve"]
