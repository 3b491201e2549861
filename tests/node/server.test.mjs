// What a VibeTrees server needs from the package besides the registry: its own profiler shared
// with our WorktreeManager (its metrics endpoint shows our creations), and its database steps
// kept as host steps after docker-compose-up, with their spans and progress events in place.
// Real git repositories, real node_modules; HOME points at a temporary folder.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { WorktreeManager, CacheManager, Profiler, PortRegistry } from '@vibetrees/native';
import { tempHome, makeProject } from './helpers.mjs';

tempHome();

const SERVER_SPANS = ['create-worktree-total', 'git-worktree-add', 'allocate-ports', 'mcp-discovery', 'npm-bootstrap', 'docker-compose-up'];

async function warmCache(project) {
  await new CacheManager({ cacheDir: project.cacheDir }).cacheNodeModules(path.join(project.root, 'node_modules'));
}

test('the server passes its profiler: manager.profiler is it, and its report shows our creations', async () => {
  const project = makeProject();
  await warmCache(project);
  const profiler = new Profiler(); // the server's own, made before the manager (new Profiler() in its constructor)
  const outer = profiler.start('server-request');
  const wm = new WorktreeManager({ rootDir: project.root, cacheDir: project.cacheDir, historyPath: project.historyPath, runtime: 'none', profiler });
  assert.equal(wm.profiler, profiler);
  assert.equal(wm.optimizer.profiler, profiler);
  const made = await wm.createWorktreeOptimized('shared-profile');
  assert.equal(made.success, true, JSON.stringify(made));
  profiler.end(outer);
  const names = profiler.generateReport().operations.map((o) => o.name);
  for (const span of [...SERVER_SPANS, 'server-request']) assert.ok(names.includes(span), `${span} not in ${names}`);
  assert.equal(profiler.getStats('create-worktree-total').count, 1);
  // the metrics the server's endpoint serves come from the same profiler
  assert.equal(wm.getPerformanceMetrics().operations.find((o) => o.name === 'create-worktree-total').count, 1);
  assert.equal(typeof profiler.getMetrics().avgWorktreeCreation, 'number');

  // without the option the manager keeps its own profiler, as before
  const own = new WorktreeManager({ rootDir: project.root, cacheDir: project.cacheDir, historyPath: project.historyPath, runtime: 'none' });
  assert.notEqual(own.profiler, profiler);
  assert.ok(own.profiler instanceof Profiler);
  assert.equal(own.profiler.getStats('create-worktree-total'), null);
  assert.throws(() => new WorktreeManager({ rootDir: project.root, profiler: {} }), { code: 'INVALID_ARGUMENT', message: /profiler/ });
  await wm.waitBackground();
});

test('the server database copy and restore run as host steps after docker-compose-up; failures are reported, never fatal', async () => {
  const project = makeProject();
  await warmCache(project);
  const profiler = new Profiler();
  const timeline = []; // everything the server would broadcast, in order
  const broadcast = (type, data) => timeline.push({ type, ...data });
  let copyInput = null;
  const wm = new WorktreeManager({
    rootDir: project.root,
    cacheDir: project.cacheDir,
    historyPath: project.historyPath,
    runtime: 'none',
    profiler,
    onProgress: (e) => broadcast('worktree:progress', e),
    hostSteps: [
      {
        // the server's copyDatabase, unchanged: it reports its own progress
        name: 'database-copy',
        dependencies: ['docker-compose-up'],
        optional: true,
        fn: async (input) => {
          copyInput = input;
          broadcast('worktree:progress', { name: input.name, step: 'database', message: 'Copying database from main...' });
          await new Promise((r) => setTimeout(r, 10));
          const ports = new PortRegistry(project.root).getWorktreePorts(input.name);
          broadcast('worktree:progress', { name: input.name, step: 'database', message: `✓ Database copied to port ${ports.postgres}` });
          return { copied: true, port: ports.postgres };
        },
      },
      {
        name: 'database-restore',
        dependencies: ['database-copy'],
        optional: true,
        fn: async (input) => {
          broadcast('worktree:progress', { name: input.name, step: 'database-restore', message: 'Restoring latest backup of main...' });
          throw new Error('no backup of main found');
        },
      },
    ],
  });
  const made = await wm.createWorktreeOptimized('with-database');
  assert.equal(made.success, true, JSON.stringify(made));
  const steps = timeline.map((e) => e.step);
  const at = (step) => steps.indexOf(step);
  const last = (step) => steps.lastIndexOf(step);
  assert.ok(at('database') >= 0 && at('database-restore') >= 0, steps.join(','));
  // in place: after the containers step (and everything before it), before complete
  for (const before of ['git', 'ports', 'containers']) {
    if (at(before) >= 0) assert.ok(last(before) < at('database'), `${before} after database: ${steps}`);
  }
  assert.ok(last('database') < at('database-restore'));
  assert.ok(last('database-restore') < at('complete'), steps.join(','));
  // the failure is a progress message, the creation succeeded
  const failure = timeline.find((e) => e.step === 'database-restore' && /no backup of main found/.test(e.message));
  assert.ok(failure, JSON.stringify(timeline));
  assert.ok('docker-compose-up' in copyInput.dependencies, JSON.stringify(copyInput));
  assert.equal(copyInput.name, 'with-database');
  assert.deepEqual(made.worktree.steps['database-copy'], { copied: true, port: made.worktree.ports.postgres });
  // their spans, under the server's names, in the server's profiler
  assert.equal(profiler.getStats('database-copy').count, 1);
  assert.equal(profiler.getStats('database-restore').count, 1);
  const report = profiler.generateReport().operations.map((o) => o.name);
  assert.ok(report.includes('database-copy') && report.includes('database-restore'));
  await wm.waitBackground();
});
