// The pool of spare worktrees through WorktreeManager (fillPool, poolStatus, clearPool) on real
// temporary git repositories with a real node_modules: a fill makes a spare, a creation from its
// commit claims it, the refill after the claim makes another, clear removes it. HOME points at a
// temporary folder.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { WorktreeManager, CacheManager } from '@vibetrees/native';
import { tempHome, makeProject, git } from './helpers.mjs';

tempHome();

function manager(project, extra = {}) {
  return new WorktreeManager({
    rootDir: project.root,
    cacheDir: project.cacheDir,
    historyPath: project.historyPath,
    runtime: 'none',
    ...extra,
  });
}

test('fillPool makes a spare, poolStatus lists it, a creation claims it, clearPool removes spares', async () => {
  const project = makeProject();
  await new CacheManager({ cacheDir: project.cacheDir }).cacheNodeModules(path.join(project.root, 'node_modules'));
  const wm = manager(project, { poolSize: 1 });

  const empty = await wm.poolStatus();
  assert.deepEqual(empty.spares, []);
  assert.equal(empty.size, 1);
  assert.equal(empty.bytes, 0);
  assert.equal(typeof empty.maxBytes, 'number');

  const report = await wm.fillPool();
  assert.equal(report.made, 1, JSON.stringify(report));
  assert.equal(report.from, 'refs/heads/main');
  const status = await wm.poolStatus();
  assert.equal(status.spares.length, 1, JSON.stringify(status));
  const spare = status.spares[0];
  assert.equal(spare.commit, git(project.root, 'rev-parse', 'main').trim());
  assert.equal(spare.from, 'refs/heads/main');
  assert.equal(spare.nodeModules, true);
  assert.ok(spare.files > 0 && spare.bytes > 0 && status.bytes === spare.bytes, JSON.stringify(status));
  assert.equal(typeof spare.ageMs, 'number');
  assert.equal(fs.realpathSync(path.dirname(spare.path)), fs.realpathSync(status.dir));
  assert.ok(fs.existsSync(path.join(spare.path, 'src', 'dir0', 'file0.js')));
  assert.ok(!git(project.root, 'worktree', 'list', '--porcelain').includes('.pool'), 'git does not list a spare');

  // the pool is full: a second fill (an explicit ref this time) makes nothing
  assert.equal((await wm.fillPool('main')).made, 0);

  const created = await wm.createWorktreeOptimized('Pooled One', 'main');
  assert.equal(created.success, true, JSON.stringify(created));
  assert.equal(created.worktree.pool.claimed, true, JSON.stringify(created.worktree.pool));
  assert.equal(typeof created.worktree.pool.spareAgeMs, 'number');
  const wt = created.worktree.path;
  assert.equal(git(wt, 'status', '--porcelain'), '');
  assert.equal(git(wt, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), 'pooled-one');
  assert.ok(fs.existsSync(path.join(wt, 'node_modules', 'semver', 'package.json')));
  assert.ok(!fs.existsSync(spare.path), 'the spare was moved into place');

  // the claim started a refill; once it is done there is a spare again, and clear removes it
  await wm.waitBackground();
  assert.equal((await wm.poolStatus()).spares.length, 1);
  assert.equal(await wm.clearPool(), 1);
  const cleared = await wm.poolStatus();
  assert.deepEqual(cleared.spares, []);
  assert.equal(cleared.bytes, 0);
  assert.equal(await wm.clearPool(), 0);
  assert.ok(fs.existsSync(path.join(wt, 'README.md')), 'clear never touches a claimed worktree');

  // a creation with an empty pool is a normal one
  const normal = await wm.createWorktreeOptimized('not-pooled', 'main');
  assert.equal(normal.success, true, JSON.stringify(normal));
  assert.equal(normal.worktree.pool.claimed, false);
  assert.equal('spareAgeMs' in normal.worktree.pool, false);
  await wm.waitBackground();
  await wm.clearPool();
});

test('poolSize: 0 makes no spare; a bad from is NOT_FOUND; bad argument types throw', async () => {
  const project = makeProject();
  const off = manager(project, { poolSize: 0 });
  const report = await off.fillPool();
  assert.equal(report.made, 0);
  assert.equal(typeof report.stopped, 'string');
  const status = await off.poolStatus();
  assert.equal(status.size, 0);
  assert.deepEqual(status.spares, []);
  const created = await off.createWorktreeOptimized('no-pool');
  assert.equal(created.success, true, JSON.stringify(created));
  assert.equal(created.worktree.pool.claimed, false);
  await off.waitBackground();
  assert.deepEqual((await off.poolStatus()).spares, [], 'no refill with poolSize 0');

  const wm = manager(project, { poolSize: 1 });
  await assert.rejects(wm.fillPool('no-such-branch'), { code: 'NOT_FOUND', message: /no-such-branch/ });
  assert.deepEqual((await wm.poolStatus()).spares, []);
  assert.throws(() => wm.fillPool(42), { code: 'INVALID_ARGUMENT' });
  await wm.waitBackground();
});
