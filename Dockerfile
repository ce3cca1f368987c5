# CPU image of the greenless HTTP service: `docker build -t greenless .` then
# `docker run --rm -p 8000:8000 greenless` and open http://localhost:8000/ (API docs at /docs).
# Only the light runtime is installed (onnxruntime + FastAPI); PyTorch is not needed to serve.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[serve]" && rm -rf /build

RUN useradd --create-home --uid 10001 greenless
USER greenless
WORKDIR /home/greenless

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

# Every `greenless serve` flag can be appended: docker run ... greenless --workers 2 --max-upload-mb 10
ENTRYPOINT ["greenless", "serve", "--host", "0.0.0.0", "--port", "8000"]
