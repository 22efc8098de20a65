# netready image for docker-compose users (the non-Docker path is scripts/setup.sh).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends g++ fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/netready
COPY setup.py pyproject.toml README.md ./
COPY ext ext
COPY pipeline pipeline
COPY schemas schemas
RUN pip install --no-cache-dir "cython>=3.0" "numpy>=1.26" \
    && pip install --no-cache-dir --no-build-isolation -e . \
    && python -c "import pipeline._kernel"
WORKDIR /data
ENTRYPOINT ["netready"]
CMD ["--help"]
