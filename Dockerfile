# speechserve on CPU: the README's main command in a container.
#   docker build -t speechserve .
#   docker run -p 8000:8000 -v hf-cache:/data/hf speechserve
# Serve another model:  docker run ... speechserve --model mistralai/Voxtral-Mini-3B-2507 --host 0.0.0.0
# With Ray Serve (replicas, KubeRay):  docker build --build-arg EXTRAS=server,ray -t speechserve:ray .
FROM python:3.11-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG EXTRAS=server

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/data/hf

# KubeRay's default readiness probes call wget (Ray images: --build-arg EXTRAS=server,ray); g++ builds the
# small-row matmul kernel on first load (speechserve/models/small_m.py; without it CPU decode is ~1.4× slower).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget g++ \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 speechserve \
    && mkdir -p /data/hf \
    && chown speechserve /data/hf

# torch first, from the CPU index (a few hundred MB instead of the CUDA build's GBs), in its own layer.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

WORKDIR /opt/speechserve
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir "./[${EXTRAS}]"

USER 1000
VOLUME ["/data/hf"]
EXPOSE 8000

# /health answers 503 while the models load (minutes on the first run: the download), 200 once ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["speechserve", "serve"]
CMD ["--model", "mistralai/Voxtral-4B-TTS-2603", "--host", "0.0.0.0", "--port", "8000"]
