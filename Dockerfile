# syntax=docker/dockerfile:1
# Sluice broker image. Stage 1 installs production dependencies only; stage 2 copies them
# with the sources onto a clean base. The application files stay owned by root (COPY's
# default) and are not writable by the runtime user `node`; only /data is.
#
# Configured by environment: every broker setting is SLUICE_<NAME> (sluice broker --help).
# The defaults below make `docker run IMAGE` and `docker run IMAGE broker --port 9000` work
# alike; arguments after the image name replace CMD only, never these defaults.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    SLUICE_LOG_LEVEL=info \
    SLUICE_DATA_DIR=/data \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=9292
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY protocol ./protocol
COPY server ./server
COPY client ./client
COPY bench ./bench
COPY console ./console
RUN chmod -R a-w /app && mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9292
# A broker that accepts a TCP connection and answers ApiVersions is healthy. The address comes
# from the broker's own configuration (PID 1's flags and SLUICE_* environment), so a broker
# started with another --port or SLUICE_PORT is checked where it listens.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "bin/sluice.mjs", "health", "--broker-pid", "1"]
# The broker handles SIGTERM itself: it finishes in-flight requests, flushes and closes
# every log, and marks the data dir clean so the next start skips recovery.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/sluice.mjs"]
CMD ["broker"]
