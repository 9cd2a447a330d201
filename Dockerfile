# syntax=docker/dockerfile:1
#
# sealtrail container image (docs/operations.md, "Container image").
#
#   docker build -t sealtrail:0.1.0 .
#   docker run --rm -p 127.0.0.1:4318:4318 -p 127.0.0.1:13133:13133 \
#     --read-only --stop-timeout 30 -v sealtrail-data:/var/lib/sealtrail sealtrail:0.1.0
#
# Three stages: `build` compiles and packs the npm package exactly as it is published; `prod`
# installs that package's production dependencies from the lock file (`npm ci --omit=dev`);
# the runtime stage copies only the result. test/ops/image.test.ts replays the prod stage and
# the start command on the host (no Docker engine is needed for that test).
#
# Base image: a current Node.js LTS on Debian slim. Pin it by digest for reproducible builds:
#   docker build --build-arg NODE_IMAGE=node:24-trixie-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: dev dependencies, TypeScript compile, npm pack ----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own "prepare" script would compile before the sources are here,
# and no dependency needs an install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm pack --ignore-scripts --pack-destination /tmp \
 && mkdir /pkg \
 && tar -xzf /tmp/sealtrail-*.tgz -C /pkg --strip-components=1 \
 && cp package-lock.json /pkg/

# ---- prod: the published package plus its production dependencies only ---------------------
FROM ${NODE_IMAGE} AS prod
# The native addon (native/: batch hashing, about 3x the ledger's throughput, and the group commit's
# write + fdatasync as one job; built by the package's own install script; docs/benchmarks.md) needs a C compiler and Python for node-gyp, in this stage
# only. Dependencies' install scripts stay off (--ignore-scripts); ours runs explicitly, and the
# build fails if the addon did not build, so an image never silently runs the slower fallback.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /pkg/ ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm run install \
 && test -f build/Release/sealtrail_hash.node \
 && mv build/Release/sealtrail_hash.node /tmp/ \
 && rm -rf build \
 && mkdir -p build/Release \
 && mv /tmp/sealtrail_hash.node build/Release/ \
 && chmod 0755 dist/src/cli/bin.js \
 && rm -rf /root/.npm /root/.cache

# ---- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="sealtrail" \
      org.opencontainers.image.description="OpenTelemetry-compatible tamper-evident log agent" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# src/cli/node-flags.ts AGENT_ENV: fewer malloc arenas, a lower peak RSS under load.
ENV MALLOC_ARENA_MAX=2
# The runtime never installs anything: drop the package managers (smaller, less to patch).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && ln -s /app/dist/src/cli/bin.js /usr/local/bin/sealtrail \
 && mkdir -p /var/lib/sealtrail \
 && chown 10001:10001 /var/lib/sealtrail \
 && chmod 0700 /var/lib/sealtrail
# Root-owned and read-only for the agent's user: the code cannot be altered at run time, and the
# root filesystem can be mounted read-only (`docker run --read-only`, Kubernetes
# readOnlyRootFilesystem). All state (ledger, keys, local write-once copies) is in the volume.
COPY --from=prod /app /app
# Numeric UID/GID so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/sealtrail
VOLUME ["/var/lib/sealtrail"]
# OTLP gRPC, OTLP HTTP, Prometheus metrics, health (the Collector's port numbers)
EXPOSE 4317 4318 8888 13133
# The agent handles SIGTERM: refuse new data (retryable), finish in-flight requests, seal the open
# segment, forward within shutdown.grace_period, exit 0. Give `docker stop` more time than that.
STOPSIGNAL SIGTERM
# Liveness only (the process answers HTTP); readiness is /readyz. Slim images have no curl, so
# node's own fetch does the request. SEALTRAIL_HEALTHCHECK_URL overrides the address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.SEALTRAIL_HEALTHCHECK_URL||'http://127.0.0.1:13133/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node flags the agent runs with: src/cli/node-flags.ts says why (a test keeps them equal).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--single-threaded-gc", "--heap-growing-percent=50", "/app/dist/src/cli/bin.js"]
CMD ["agent", "--config", "/app/config/container.yaml"]
