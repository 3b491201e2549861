// Packaging: ESM import and CommonJS require give the same objects. Installing the packed
// packages into a fresh project outside the repository, without Rust (JS, ESM, CommonJS and
// TypeScript), is tests/dist/run.sh's job: it needs the per-platform package that .ci/dist.sh builds.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from '@vibetrees/native';
import esmDefault from '@vibetrees/native';

const require = createRequire(import.meta.url);

test('ESM import and CommonJS require expose the same API', () => {
  const cjs = require('@vibetrees/native');
  for (const name of ['Profiler', 'PerformanceOptimizer', 'CacheManager', 'WorktreeManager', 'History', 'coreVersion', 'errorCodes']) {
    assert.equal(typeof esm[name], 'function', name);
    assert.equal(esm[name], cjs[name], name);
    assert.equal(esmDefault[name], cjs[name], name);
  }
  assert.match(esm.coreVersion(), /^\d+\.\d+\.\d+/);
  assert.ok(esm.errorCodes().includes('CYCLE'));
});
