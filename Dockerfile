# syntax=docker/dockerfile:1
# Targets (`make image` builds server and one of the lambda targets: deploy/images/build.sh):
#   server:     `forkline serve` (default command) or `forkline worker`, as in docker-compose.yml
#   lambda:     the AWS Lambda image on AWS's base; its command is a handler from adapters/aws_lambda.py
#   lambda-ric: the same on the Python base, with AWS's runtime interface client (awslambdaric)
# All install from uv.lock with hashes and resolve nothing: the locked dependencies first, then
# forkline's wheel with --no-deps (tests/deploy/test_wheel.py installs the same way).
# PYTHON_IMAGE: python:3.11-slim, or a base with its layout (deploy/images/build.sh makes one from Debian).
# The optional build secret ca-certificates (a CA bundle) is for networks that inspect TLS: pip trusts it
# during the build stage's downloads; it is never written to a layer.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# uv (exports the lock) and setuptools (builds the wheel), pinned with hashes.
COPY locks/bootstrap.txt ./locks/
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && pip install --no-cache-dir --require-hashes --no-deps -r locks/bootstrap.txt
# template.yaml: local/cloud_emulation/template.yaml links to it (the wheel carries it for `forkline run --cloud`).
COPY pyproject.toml uv.lock README.md template.yaml ./
COPY functions ./functions
COPY adapters ./adapters
COPY local ./local
# The server's dependencies only: no extras, no groups (lambda-ric.txt adds the runtime client's).
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && uv export --frozen --no-default-groups --no-emit-project -o /dist/requirements.txt \
    && uv export --frozen --no-default-groups --no-emit-project --extra lambda-ric -o /dist/lambda-ric.txt \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation -w /dist . \
    && pip install --no-cache-dir --prefix=/install --require-hashes --no-deps -r /dist/requirements.txt \
    && pip install --no-cache-dir --prefix=/install --no-deps /dist/forkline-*.whl

FROM ${PYTHON_IMAGE} AS server
RUN useradd --create-home --uid 10001 forkline
COPY --from=build /install /usr/local
WORKDIR /home/forkline
USER forkline
ENV HOST=0.0.0.0 PORT=3000 LOG_DIR=/home/forkline/logs DATA_DIR=/home/forkline/data PYTHONUNBUFFERED=1
EXPOSE 3000
STOPSIGNAL SIGTERM
# Liveness only (GET /livez asks no dependency). `forkline worker` serves no API: docker-compose.yml gives
# it a check on its metrics port instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('PORT', '3000'), timeout=2)"]
CMD ["forkline", "serve"]

FROM public.ecr.aws/lambda/python:3.11 AS lambda
COPY --from=build /dist /tmp/dist
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" --require-hashes --no-deps -r /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" --no-deps /tmp/dist/forkline-*.whl \
    && rm -rf /tmp/dist
# Lambda runs the image as a non-root user; logs go to CloudWatch through stderr.
ENV LOG_DIR=""
CMD ["adapters.aws_lambda.http_handler"]

FROM ${PYTHON_IMAGE} AS lambda-ric
COPY --from=build /dist /tmp/dist
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
    && pip install --no-cache-dir --require-hashes --no-deps -r /tmp/dist/lambda-ric.txt \
    && pip install --no-cache-dir --no-deps /tmp/dist/forkline-*.whl \
    && rm -rf /tmp/dist \
    && useradd --uid 10001 --no-create-home forkline
USER forkline
WORKDIR /tmp
ENV LOG_DIR="" PYTHONUNBUFFERED=1
# AWS's runtime client loads the handler named by the command (as on AWS's base): it asks the Lambda
# Runtime API at $AWS_LAMBDA_RUNTIME_API for each invocation.
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["adapters.aws_lambda.http_handler"]
