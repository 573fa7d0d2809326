# syntax=docker/dockerfile:1
# The one image of coordinator-ha: the CLI `coordinator-ha` runs the webhook, the handler,
# the recovery sidecar and the reference Coordinator (see DESIGN.md).
#
#   docker build -t ghcr.io/coordinator-ha/coordinator-ha:$(node -p 'require("./package.json").version') .

ARG NODE_VERSION=24

# Compile TypeScript to dist/ with the full dependency tree.
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, without install scripts.
FROM node:${NODE_VERSION}-bookworm AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
LABEL org.opencontainers.image.title="coordinator-ha" \
      org.opencontainers.image.description="Run a stateful Coordinator highly available on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# The CLI reads its version from package.json next to dist/.
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json LICENSE ./
# The chart runs every container as 65532 (runAsNonRoot); so does a plain `docker run`.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli.js"]
