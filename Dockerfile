# bizstream's worker image (used by docker-compose.yml). The broker runs in its own Apache Kafka container.
FROM python:3.11-slim
WORKDIR /app
# Images on the CPU: Tesseract OCR and its English data (the OCR analyzer); fonts for the rendered sample memes.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY bizstream ./bizstream
COPY plugins ./plugins
COPY config ./config
COPY data ./data
COPY docs ./docs
RUN pip install --no-cache-dir -e .
ENV BIZSTREAM_CONFIG=/app/config/settings.toml
CMD ["bizstream", "--help"]
