# temporal-runbooks: one image, two roles.
#   docker run IMAGE worker    Temporal worker (registers search attributes at start-up; runs the bundle built below)
#   docker run IMAGE server    webhook / HTTP API on port 3000
# The app runs TypeScript directly with tsx, which is a production dependency.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so source edits do not invalidate this layer.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .

# The workflows bundled once at build time (`runbooks bundle`): a worker starts without running webpack, and every
# worker of one image runs the same workflow code.
ENV RUNBOOKS_WORKFLOW_BUNDLE=/app/workflow-bundle.js
RUN /app/node_modules/.bin/tsx src/cli/main.ts bundle --out $RUNBOOKS_WORKFLOW_BUNDLE

USER node
EXPOSE 3000
ENTRYPOINT ["/app/node_modules/.bin/tsx", "src/cli/main.ts"]
CMD ["worker"]
