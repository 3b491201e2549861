// CacheManager: the original API (cacheNodeModules / restoreNodeModules Promises, isCacheValid and
// getDockerCacheEnv synchronous) plus stats, verify, prune and clear, on a real node_modules.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CacheManager } from '@vibetrees/native';
import { tempHome, makeProject, tree } from './helpers.mjs';

const home = tempHome();

test('cache, then restore into another checkout of the same project', async () => {
  const project = makeProject();
  const cache = new CacheManager({ cacheDir: project.cacheDir });
  assert.equal(fs.realpathSync(cache.cacheDir), fs.realpathSync(project.cacheDir));
  assert.equal(cache.isCacheValid(project.root), false);

  const populating = cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  assert.ok(populating instanceof Promise);
  const populated = await populating;
  assert.equal(typeof populated, 'object');
  assert.equal(cache.isCacheValid(project.root), true);

  // a second checkout: same package.json and lockfile, no node_modules
  const other = path.join(project.tmp, 'other');
  fs.mkdirSync(other);
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(project.root, f), path.join(other, f));
  assert.equal(cache.isCacheValid(other), true);
  const restored = await cache.restoreNodeModules(path.join(other, 'node_modules'));
  assert.equal(restored.restored, true, JSON.stringify(restored));
  assert.deepEqual(tree(path.join(other, 'node_modules')), tree(path.join(project.root, 'node_modules')));
  // an existing node_modules is replaced only when told; what is not node_modules never
  await assert.rejects(cache.restoreNodeModules(path.join(other, 'node_modules')), { code: 'ALREADY_EXISTS' });
  const again = await cache.restoreNodeModules(path.join(other, 'node_modules'), { replace: true });
  assert.equal(again.restored, true);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
  await assert.rejects(cache.restoreNodeModules(path.join(other, 'notes.txt'), { replace: true }), { code: 'INVALID_ARGUMENT' });
  assert.equal(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8'), 'mine');
  // the restored tree is usable by node
  const semver = (await import(path.join(other, 'node_modules', 'semver', 'index.js'))).default;
  assert.equal(semver.valid('1.2.3'), '1.2.3');

  const stats = await cache.stats();
  assert.equal(typeof stats, 'object');
  const verify = await cache.verify();
  assert.equal(typeof verify, 'object');
  assert.deepEqual(verify.bad ?? [], []);
});

test('a miss resolves to { restored: false, reason }; a changed lockfile invalidates', async () => {
  const project = makeProject();
  const cache = new CacheManager({ cacheDir: project.cacheDir });
  const miss = await cache.restoreNodeModules(path.join(project.root, 'fresh', 'node_modules'));
  assert.equal(miss.restored, false);
  assert.equal(typeof miss.reason, 'string');

  await cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  assert.equal(cache.isCacheValid(project.root), true);
  const lock = path.join(project.root, 'package-lock.json');
  const data = JSON.parse(fs.readFileSync(lock, 'utf8'));
  data.name = 'app-changed';
  fs.writeFileSync(lock, JSON.stringify(data, null, 2));
  assert.equal(cache.isCacheValid(project.root), false);
});

test('getDockerCacheEnv is the BuildKit environment; prune and clear empty the cache', async () => {
  const project = makeProject();
  const cache = new CacheManager({ cacheDir: project.cacheDir });
  assert.deepEqual(cache.getDockerCacheEnv(), {
    DOCKER_BUILDKIT: '1',
    BUILDKIT_PROGRESS: 'plain',
    COMPOSE_DOCKER_CLI_BUILD: '1',
  });
  await cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  assert.equal(cache.isCacheValid(project.root), true);
  const pruned = await cache.prune(0);
  assert.equal(typeof pruned, 'object');
  assert.equal(cache.isCacheValid(project.root), false);
  await cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  await cache.clear();
  assert.equal(cache.isCacheValid(project.root), false);
});

test('default cache folder is ~/.vibetrees/cache; errors carry codes', async () => {
  const cache = new CacheManager();
  assert.equal(cache.cacheDir, path.join(home, '.vibetrees', 'cache'));
  assert.equal(new CacheManager(path.join(home, 'elsewhere')).cacheDir, path.join(home, 'elsewhere'));
  await assert.rejects(cache.cacheNodeModules(path.join(home, 'nowhere', 'node_modules')), (err) => {
    assert.ok(err instanceof Error);
    assert.ok(typeof err.code === 'string' && err.code.length > 0, String(err.code));
    assert.match(err.message, /nowhere/);
    return true;
  });
  assert.throws(() => new CacheManager({ method: 'teleport' }), { code: 'INVALID_ARGUMENT', message: /teleport/ });
  assert.throws(() => cache.isCacheValid(42), /string/i);
  assert.throws(() => cache.prune(-1), { code: 'INVALID_ARGUMENT' });
});
