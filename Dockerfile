# bizstream's worker image (used by docker-compose.yml). The broker runs in its own Apache Kafka container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bizstream ./bizstream
COPY plugins ./plugins
COPY config ./config
COPY data ./data
COPY docs ./docs
RUN pip install --no-cache-dir -e .
ENV BIZSTREAM_CONFIG=/app/config/settings.toml
CMD ["bizstream", "--help"]
