#!/usr/bin/env bash
# The whole test suite: tools, build, static checks, demo models, then vitest.
# This is the README's test command (after `npm ci`) and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
npm run --silent build
# The container image (cached by its inputs: a no-op when nothing in it changed). Without root or
# buildah test/integration/image.test.ts says why it cannot run (and fails under CI=true).
if [ "$(id -u)" = 0 ] && command -v buildah >/dev/null; then bash scripts/image.sh; fi
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
npm run --silent demo:models
mkdir -p .runway/test-results
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.runway/test-results/vitest.json "$@" || status=$?
# One plain closing line that any reader of the log (human or CI) can count.
node -e '
  const r = require("./.runway/test-results/vitest.json");
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("no tests ran"); process.exit(1); }
' || status=1
exit $status
