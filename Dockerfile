# syntax=docker/dockerfile:1
# Targets:
#   server: `forkline serve` (default command) or `forkline worker`, as in docker-compose.yml
#   lambda: the AWS Lambda image; its command is a handler from adapters/aws_lambda.py

FROM python:3.11-slim AS build
WORKDIR /src
# template.yaml: local/template.yaml links to it (the wheel carries it for `forkline run --cloud`).
COPY pyproject.toml README.md template.yaml ./
COPY functions ./functions
COPY adapters ./adapters
COPY local ./local
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim AS server
RUN useradd --create-home --uid 10001 forkline
COPY --from=build /install /usr/local
WORKDIR /home/forkline
USER forkline
ENV HOST=0.0.0.0 PORT=3000 LOG_DIR=/home/forkline/logs DATA_DIR=/home/forkline/data PYTHONUNBUFFERED=1
EXPOSE 3000
STOPSIGNAL SIGTERM
CMD ["forkline", "serve"]

FROM public.ecr.aws/lambda/python:3.11 AS lambda
COPY pyproject.toml README.md template.yaml ./
COPY functions ./functions
COPY adapters ./adapters
COPY local ./local
RUN pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" . && rm -rf pyproject.toml README.md template.yaml
# Lambda runs the image as a non-root user; logs go to CloudWatch through stderr.
ENV LOG_DIR=""
CMD ["adapters.aws_lambda.http_handler"]
