# The identity service. Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false && npm cache clean --force
COPY gen ./gen
COPY src ./src
USER node
EXPOSE 8080
CMD ["node", "src/main.ts"]
