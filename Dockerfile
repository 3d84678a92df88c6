FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY api api
COPY models models
COPY migrations migrations
COPY worker.py cli.py ./
RUN pip install --no-cache-dir .
ENV SOJOURN_TEMPORAL_ADDRESS=temporal:7233
CMD ["sojourn", "api", "--host", "0.0.0.0", "--port", "8000"]
