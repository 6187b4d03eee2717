# The gitops-lab agent image (mode in-cluster, for kind): `gitops-lab agent install --mode in-cluster`
# builds it and loads it into the kind cluster with `kind load docker-image`.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gitops_lab ./gitops_lab
RUN pip install --no-cache-dir .
USER 65532:65532
ENV HOME=/tmp GITOPS_LAB_CACHE=/tmp/gitops-lab
EXPOSE 8080
ENTRYPOINT ["gitops-lab"]
CMD ["agent", "run", "--namespace", "gitops-lab", "--http-address", "0.0.0.0:8080"]
