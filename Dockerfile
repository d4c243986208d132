# syntax=docker/dockerfile:1
# The weft image: one executable for the operator (`weft operator`) and the control
# plane (`weft control-plane`, weftd). `make docker-build` tags it
# ghcr.io/weft-mesh/weft:<package.json version>, the tag install.yaml and the
# MeshInstallation default name. Untested on the development machines (no image
# registry there); keep it correct by reading, and lint it with hadolint.
ARG NODE_IMAGE=node:24.21.0-alpine

# TypeScript -> dist/, with the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /src/dist ./dist
# Read at run time, found beside dist/: the CRDs install.yaml carries (api/crds.ts)
# and the CA's gRPC service definition (ca/server/certificate-service.ts).
COPY crds ./crds
COPY ca/proto ./ca/proto
# The image's `node` user, by number so that runAsNonRoot can be verified.
USER 1000:1000
ENTRYPOINT ["node", "dist/cmd/weft.js"]
