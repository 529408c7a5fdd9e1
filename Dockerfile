# The identity service. Node 24 runs the TypeScript sources directly (type stripping).
# Without MYSQL_URL/REDIS_URL it runs the embedded development mode: its SQLite
# files and generated keys go to the /data volume, the only place it writes.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false && npm cache clean --force
COPY gen ./gen
COPY src ./src
# The code stays root's (read-only to the service); only the volume is the service user's.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "src/cli/healthcheck.ts"]
CMD ["node", "src/main.ts"]
