# syntax=docker/dockerfile:1
# Sluice broker image. Stage 1 installs production dependencies only; stage 2 copies them
# with the sources onto a clean base and runs as the unprivileged `node` user.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    SLUICE_LOG_LEVEL=info
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node protocol ./protocol
COPY --chown=node:node server ./server
COPY --chown=node:node client ./client
COPY --chown=node:node console ./console
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9292
# A broker that accepts a TCP connection and answers ApiVersions is healthy.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "bin/sluice.mjs", "health", "--bootstrap", "127.0.0.1:9292"]
# The broker handles SIGTERM itself: it finishes in-flight requests, flushes and closes
# every log, and marks the data dir clean so the next start skips recovery.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/sluice.mjs"]
CMD ["broker", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "9292"]
