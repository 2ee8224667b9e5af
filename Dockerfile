# Renfort's image: the web, the worker and the release step, each started by ops/start.sh from the Procfile line.
#
#     docker build -t renfort .
#     docker run --rm --env-file .env renfort release     # then: … renfort web, … renfort worker
#
# Python 3.11, the Python of the lock (constraints.txt). Only wheels are installed (ops/install-production.sh), so
# neither stage needs a compiler; the final stage gets the virtualenv and the source, and runs as an unprivileged
# user that cannot write to either.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY constraints.txt requirements.txt ./
COPY ops/install-production.sh ops/
RUN ops/install-production.sh /opt/renfort/venv

FROM ${PYTHON_IMAGE}
ENV RENFORT_VENV=/opt/renfort/venv \
    PATH=/opt/renfort/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin renfort
COPY --from=dependencies /opt/renfort/venv /opt/renfort/venv
WORKDIR /app
COPY . .
USER renfort
EXPOSE 8000
ENTRYPOINT ["ops/start.sh"]
CMD ["web"]
