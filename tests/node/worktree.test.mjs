// WorktreeManager: full creations on real temporary git repositories with real node_modules,
// checked on disk with git itself. HOME points at a temporary folder.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { WorktreeManager, CacheManager, Profiler, PerformanceOptimizer, History } from '@vibetrees/native';
import { tempHome, makeProject, git, tree } from './helpers.mjs';

const home = tempHome();

function manager(project, extra = {}) {
  return new WorktreeManager({
    rootDir: project.root,
    cacheDir: project.cacheDir,
    historyPath: project.historyPath,
    runtime: 'none',
    ...extra,
  });
}

async function warmCache(project) {
  const cache = new CacheManager({ cacheDir: project.cacheDir });
  await cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  assert.equal(cache.isCacheValid(project.root), true);
}

test('a full createWorktreeOptimized, checked with git and on disk; events; timer keeps ticking', async () => {
  const project = makeProject();
  await warmCache(project);
  const events = [];
  const timeline = []; // progress steps and timer ticks, in the order the event loop saw them
  const wm = manager(project, {
    onProgress: (e) => {
      events.push(e);
      timeline.push(e.step);
    },
  });
  assert.ok(wm.profiler instanceof Profiler);
  assert.ok(wm.optimizer instanceof PerformanceOptimizer);
  assert.ok(wm.cacheManager instanceof CacheManager);
  assert.ok(wm.history instanceof History);

  const timer = setInterval(() => timeline.push('tick'), 1);
  const result = await wm.createWorktreeOptimized('Feature/Login Page');
  clearInterval(timer);
  // The loop kept turning while the creation ran: timer ticks came between its progress events
  // (a creation blocking the loop would deliver every event in one burst after it).
  const first = timeline.findIndex((x) => x !== 'tick');
  const last = timeline.lastIndexOf('complete');
  assert.ok(first >= 0 && last > first, timeline.join(' '));
  assert.ok(timeline.slice(first, last).includes('tick'), `no timer tick between progress events: ${timeline.join(' ')}`);

  assert.equal(result.success, true, JSON.stringify(result));
  const slug = 'feature-login-page';
  const wt = result.worktree;
  assert.equal(wt.name, slug);
  assert.equal(wt.branch, slug);
  assert.equal(fs.realpathSync(wt.path), fs.realpathSync(path.join(project.root, '.worktrees', slug)));
  assert.deepEqual(wt.dockerStatus, []);

  // git itself agrees
  const list = git(project.root, 'worktree', 'list', '--porcelain');
  assert.match(list, new RegExp(`worktree .*/\\.worktrees/${slug}\\n`));
  assert.match(list, new RegExp(`branch refs/heads/${slug}\\n`));
  assert.equal(git(wt.path, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), slug);
  assert.equal(git(wt.path, 'status', '--porcelain'), '');
  assert.equal(git(wt.path, 'rev-parse', 'HEAD'), git(project.root, 'rev-parse', 'main'));

  // ports.json: the registry under HOME, 2-space indented, "<worktree>:<service>" -> port
  const portsFile = path.join(home, '.vibetrees', 'projects-app', 'ports.json');
  const portsText = fs.readFileSync(portsFile, 'utf8');
  const registry = JSON.parse(portsText);
  assert.equal(portsText.trim(), JSON.stringify(registry, null, 2));
  assert.equal(typeof registry[`${slug}:postgres`], 'number');
  assert.equal(typeof registry[`${slug}:api`], 'number');
  for (const [service, port] of Object.entries(wt.ports)) assert.equal(registry[`${slug}:${service}`], port);

  // .env: project name and one line per port
  const env = fs.readFileSync(path.join(wt.path, '.env'), 'utf8');
  assert.match(env, /^COMPOSE_PROJECT_NAME=vibe_feature_login_page$/m);
  assert.match(env, new RegExp(`^POSTGRES_PORT=${registry[`${slug}:postgres`]}$`, 'm'));
  assert.match(env, new RegExp(`^API_PORT=${registry[`${slug}:api`]}$`, 'm'));

  // .claude/settings.json: project package, local server folder, postgres DATABASE_URL
  const settings = JSON.parse(fs.readFileSync(path.join(wt.path, '.claude', 'settings.json'), 'utf8'));
  const servers = settings.mcpServers;
  assert.deepEqual(servers.postgres.command, 'npx');
  assert.deepEqual(servers.postgres.args, ['-y', '@modelcontextprotocol/server-postgres']);
  assert.equal(servers.postgres.env.DATABASE_URL, `postgresql://localhost:${registry[`${slug}:postgres`]}/vibe`);
  assert.equal(servers.notes.command, 'node');
  assert.match(servers.notes.args[0], /mcp-servers\/notes\/index\.js$/);

  // node_modules identical to the source (files, modes, nested folders, .bin symlinks)
  assert.deepEqual(tree(path.join(wt.path, 'node_modules')), tree(path.join(project.root, 'node_modules')));

  // the event sequence, delivered before the promise resolved
  assert.ok(events.length >= 4, JSON.stringify(events));
  for (const e of events) {
    assert.deepEqual(Object.keys(e).sort(), ['message', 'name', 'step']);
    assert.equal(e.name, slug);
  }
  const steps = events.map((e) => e.step);
  assert.equal(steps[0], 'git');
  assert.equal(steps.at(-1), 'complete');
  assert.match(events.at(-1).message, /^✓/);
  for (const step of ['git', 'ports', 'mcp', 'install']) {
    assert.ok(steps.includes(step), `no '${step}' event in ${steps.join(',')}`);
    assert.ok(events.some((e) => e.step === step && e.message.startsWith('✓')), `'${step}' never marked done`);
  }
  assert.ok(steps.indexOf('ports') < steps.lastIndexOf('complete'));

  // metrics in the server's shape
  const metrics = wm.getPerformanceMetrics();
  const names = metrics.operations.map((o) => o.name);
  for (const n of ['create-worktree-total', 'git-worktree-add', 'allocate-ports', 'mcp-discovery']) {
    assert.ok(names.includes(n), `${n} missing from ${names}`);
  }
  assert.equal(typeof metrics.totalTime, 'number');
  assert.equal(metrics.avgWorktreeCreation, wm.profiler.getStats('create-worktree-total').avg);

  // a second call: existed, nothing changed
  const headBefore = git(wt.path, 'rev-parse', 'HEAD');
  const again = await wm.createWorktreeOptimized('Feature/Login Page');
  assert.equal(again.success, true);
  assert.equal(again.existed, true);
  assert.equal(again.message, 'Worktree already exists');
  assert.equal(again.name, slug);
  assert.equal(again.branch, slug);
  assert.equal(git(wt.path, 'rev-parse', 'HEAD'), headBefore);
  assert.equal(fs.readFileSync(path.join(wt.path, '.env'), 'utf8'), env);
  assert.equal(fs.readFileSync(portsFile, 'utf8'), portsText);

  await wm.waitBackground();
});

test('bad branch names resolve to { success: false } and create nothing; bad types throw', async () => {
  const project = makeProject();
  const events = [];
  const wm = manager(project, { onProgress: (e) => events.push(e) });
  const branchesBefore = git(project.root, 'branch', '--format=%(refname:short)');
  for (const bad of ['', '..', '---', '.hidden', 'a..b', 'foo.lock']) {
    const result = await wm.createWorktreeOptimized(bad);
    assert.equal(result.success, false, `${JSON.stringify(bad)} -> ${JSON.stringify(result)}`);
    assert.equal(typeof result.error, 'string');
    assert.ok(result.error.length > 0);
    assert.equal(result.code, 'INVALID_ARGUMENT', result.error);
  }
  assert.equal(git(project.root, 'branch', '--format=%(refname:short)'), branchesBefore);
  assert.equal(git(project.root, 'worktree', 'list', '--porcelain').match(/^worktree /gm).length, 1);
  assert.ok(!fs.existsSync(path.join(project.root, '.worktrees', 'a..b')));
  assert.ok(events.some((e) => e.step === 'error'));

  const unknownFrom = await wm.createWorktreeOptimized('ok-name', 'no-such-branch');
  assert.equal(unknownFrom.success, false);
  assert.match(unknownFrom.error, /no-such-branch/);
  assert.ok(!git(project.root, 'branch', '--format=%(refname:short)').includes('ok-name'));

  assert.throws(() => wm.createWorktreeOptimized(42), { code: 'INVALID_ARGUMENT', message: /branchName must be a string/ });
  assert.throws(() => wm.createWorktreeOptimized('x', null), { code: 'INVALID_ARGUMENT', message: /fromBranch/ });
  assert.throws(() => new WorktreeManager({}), { code: 'INVALID_ARGUMENT', message: /rootDir/ });
  assert.throws(() => new WorktreeManager({ rootDir: project.root, onProgress: 'no' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(
    () => new WorktreeManager({ rootDir: path.join(project.tmp, 'missing'), runtime: 'none' }),
    (err) => err.code === 'IO' && /missing/.test(err.message),
  );
  assert.throws(() => manager(project, { runtime: 'kubernetes' }), { code: 'INVALID_ARGUMENT', message: /kubernetes/ });
});

test('host steps run inside the graph where their dependencies put them, with their inputs', async () => {
  const project = makeProject();
  await warmCache(project);
  const seen = [];
  const events = [];
  const wm = manager(project, {
    onProgress: (e) => events.push(e),
    hostSteps: [
      {
        name: 'copy-database',
        dependencies: ['write-env'],
        fn: async (input) => {
          // .env is written before this step runs
          const env = fs.readFileSync(path.join(input.path, '.env'), 'utf8');
          seen.push({ step: 'copy-database', input, hasEnv: /POSTGRES_PORT=/.test(env) });
          await new Promise((r) => setTimeout(r, 5));
          return { copied: 3 };
        },
      },
      {
        name: 'seed-cache',
        dependencies: ['copy-database'],
        fn: async (input) => {
          seen.push({ step: 'seed-cache', input });
          return 'seeded';
        },
      },
      { name: 'flaky-extra', optional: true, dependencies: ['git-worktree-add'], fn: async () => { throw new Error('optional step failed'); } },
    ],
  });
  const result = await wm.createWorktreeOptimized('with-host-steps');
  assert.equal(result.success, true, JSON.stringify(result));
  assert.deepEqual(seen.map((s) => s.step), ['copy-database', 'seed-cache']);
  assert.equal(seen[0].hasEnv, true);
  assert.equal(seen[0].input.name, 'with-host-steps');
  assert.equal(seen[0].input.branch, 'with-host-steps');
  assert.equal(fs.realpathSync(seen[0].input.path), fs.realpathSync(result.worktree.path));
  assert.deepEqual(seen[1].input.dependencies['copy-database'], { copied: 3 });
  // in the same profile as the built-in steps
  assert.equal(wm.profiler.getStats('copy-database').count, 1);
  assert.equal(wm.profiler.getStats('seed-cache').count, 1);
  await wm.waitBackground();

  const failing = manager(project, {
    hostSteps: [{ name: 'must-work', dependencies: ['write-env'], fn: async () => { throw new Error('database copy exploded'); } }],
  });
  const failed = await failing.createWorktreeOptimized('host-step-fails');
  assert.equal(failed.success, false);
  assert.match(failed.error, /database copy exploded/);
  assert.match(failed.error, /must-work/);
  await failing.waitBackground();

  assert.throws(
    () => manager(project, { hostSteps: [{ name: 'x', fn: 'not a function' }] }),
    { code: 'INVALID_ARGUMENT', message: /fn must be a function/ },
  );
  const unknownDep = await manager(project, {
    hostSteps: [{ name: 'x', dependencies: ['no-such-step'], fn() {} }],
  }).createWorktreeOptimized('unknown-dependency');
  assert.equal(unknownDep.success, false);
  assert.match(unknownDep.error, /no-such-step/);
  assert.ok(!git(project.root, 'branch', '--format=%(refname:short)').includes('unknown-dependency'));
});

test('listWorktrees, removeWorktree, warm, waitBackground, createWorktree alias', async () => {
  const project = makeProject();
  const wm = manager(project);
  const jobs = await wm.warm();
  assert.ok(Array.isArray(jobs));
  await wm.waitBackground();
  assert.deepEqual(wm.backgroundJobs(), []);
  assert.equal(new CacheManager({ cacheDir: project.cacheDir }).isCacheValid(project.root), true);

  const created = await wm.createWorktree('listed');
  assert.equal(created.success, true, JSON.stringify(created));
  const list = await wm.listWorktrees();
  const entry = list.find((w) => w.name === 'listed');
  assert.ok(entry, JSON.stringify(list));
  assert.equal(entry.branch, 'listed');
  assert.deepEqual(entry.ports, created.worktree.ports);
  assert.ok(list.some((w) => w.isMain));

  const removed = await wm.removeWorktree('listed');
  assert.equal(removed.success, true);
  assert.equal(removed.name, 'listed');
  assert.ok(!git(project.root, 'worktree', 'list', '--porcelain').includes('.worktrees/listed'));
  assert.ok(git(project.root, 'branch', '--format=%(refname:short)').includes('listed'), 'the branch is kept');
  await assert.rejects(wm.removeWorktree('never-made'), { code: 'NOT_FOUND' });

  // the history of creations
  assert.equal(wm.history.path, project.historyPath);
  const recent = await wm.history.recent(5);
  assert.equal(recent[0].name, 'listed');
  assert.ok(recent[0].readyMs > 0);
  assert.ok(recent[0].steps.some((st) => st.step === 'git-worktree-add'));
  const trace = JSON.parse(await wm.history.trace('listed'));
  const traceEvents = Array.isArray(trace) ? trace : trace.traceEvents;
  assert.ok(traceEvents.some((e) => e.name === 'create-worktree-total'));
  assert.equal(await wm.history.trace('never-made'), null);
  const summaries = await wm.history.stepSummaries();
  assert.ok(summaries.some((st) => st.step === 'git-worktree-add' && st.count === 1));
  const advice = await wm.history.advice();
  assert.ok(Array.isArray(advice.regressed));
  await wm.waitBackground();
  assert.ok(WorktreeManager.stepNames.includes('write-env'));
});

test('removeWorktree refuses a dirty or locked worktree unless told; the trash brings it back', async () => {
  const project = makeProject();
  const wm = manager(project);
  const created = await wm.createWorktreeOptimized('dirty-one');
  assert.equal(created.success, true, JSON.stringify(created));
  const wt = created.worktree.path;
  fs.writeFileSync(path.join(wt, 'mine.txt'), 'mine\n');
  await assert.rejects(wm.removeWorktree('dirty-one'), { code: 'WORKTREE_DIRTY', message: /mine\.txt/ });
  assert.ok(fs.existsSync(path.join(wt, 'mine.txt')));
  git(project.root, 'worktree', 'lock', wt);
  await assert.rejects(wm.removeWorktree('dirty-one', { force: true }), { code: 'WORKTREE_LOCKED' });
  assert.throws(() => wm.removeWorktree('dirty-one', 'force'), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(wm.removeWorktree('dirty-one', { forse: true }), { code: 'PARSE' });
  const removed = await wm.removeWorktree('dirty-one', { force: true, forceLocked: true });
  assert.equal(removed.kept?.name, 'dirty-one', JSON.stringify(removed));
  assert.ok(!fs.existsSync(wt));
  const kept = await wm.trashList();
  assert.deepEqual(kept.map((t) => t.name), ['dirty-one']);
  const back = await wm.trashRestore('dirty-one');
  assert.equal(back.name, 'dirty-one');
  assert.equal(fs.readFileSync(path.join(wt, 'mine.txt'), 'utf8'), 'mine\n');
  assert.ok(git(project.root, 'worktree', 'list', '--porcelain').includes('branch refs/heads/dirty-one'));
  // a folder under the base that is not a worktree of ours is never deleted
  const sibling = path.join(project.root, '.worktrees', 'sibling');
  fs.mkdirSync(sibling, { recursive: true });
  fs.writeFileSync(path.join(sibling, 'keep.txt'), 'x');
  await assert.rejects(wm.removeWorktree('sibling', { force: true, forceLocked: true }), { code: 'NOT_FOUND' });
  assert.ok(fs.existsSync(path.join(sibling, 'keep.txt')));
  await wm.waitBackground();
});

test('an onProgress that throws does not break the creation (reported as a warning)', async () => {
  const project = makeProject();
  await warmCache(project);
  const warnings = [];
  const onWarning = (w) => warnings.push(w.message);
  process.on('warning', onWarning);
  const wm = manager(project, {
    onProgress: () => {
      throw new Error('listener bug');
    },
  });
  const result = await wm.createWorktreeOptimized('throwing-listener');
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  assert.equal(result.success, true, JSON.stringify(result));
  assert.ok(warnings.some((m) => /listener bug/.test(m)), JSON.stringify(warnings));
  await wm.waitBackground();
});

test('two creations at once: both succeed, each gets its own events and ports', async () => {
  const project = makeProject();
  await warmCache(project);
  const events = [];
  const wm = manager(project, { onProgress: (e) => events.push(e) });
  const [a, b] = await Promise.all([wm.createWorktreeOptimized('parallel-a'), wm.createWorktreeOptimized('parallel-b')]);
  assert.equal(a.success, true, JSON.stringify(a));
  assert.equal(b.success, true, JSON.stringify(b));
  for (const name of ['parallel-a', 'parallel-b']) {
    const own = events.filter((e) => e.name === name);
    assert.equal(own.at(-1).step, 'complete', JSON.stringify(own));
  }
  const portsA = new Set(Object.values(a.worktree.ports));
  assert.ok(Object.values(b.worktree.ports).every((p) => !portsA.has(p)), 'a port was handed out twice');
  const list = git(project.root, 'worktree', 'list', '--porcelain');
  assert.match(list, /\.worktrees\/parallel-a\n/);
  assert.match(list, /\.worktrees\/parallel-b\n/);
  assert.equal(wm.profiler.getStats('create-worktree-total').count, 2);
  await wm.waitBackground();
});

test('an AbortSignal cancels a real creation: it resolves CANCELLED and nothing of it is left', async () => {
  const project = makeProject();
  await warmCache(project);
  const home = process.env.HOME;
  const branchesBefore = git(project.root, 'branch', '--format=%(refname:short)');
  const controller = new AbortController();
  // A host step after the ports: by then the branch, the registration, the folder, node_modules
  // and the ports exist. It aborts, and the creation must undo all of them.
  const wm = manager(project, {
    hostSteps: [
      {
        name: 'abort-now',
        dependencies: ['allocate-ports', 'git-worktree-add'],
        fn: async () => {
          controller.abort();
          return 'aborted';
        },
      },
    ],
  });
  const result = await wm.createWorktreeOptimized('Aborted Here', 'main', { signal: controller.signal });
  assert.equal(result.success, false, JSON.stringify(result));
  assert.equal(result.code, 'CANCELLED', result.error);
  assert.match(result.error, /aborted-here/);
  await wm.waitBackground();
  assert.ok(!fs.existsSync(path.join(project.root, '.worktrees', 'aborted-here')), 'folder left');
  assert.ok(!git(project.root, 'worktree', 'list', '--porcelain').includes('aborted-here'), 'registration left');
  assert.equal(git(project.root, 'branch', '--format=%(refname:short)'), branchesBefore, 'branch left');
  const staging = path.join(project.root, '.worktrees', '.staging');
  assert.deepEqual(fs.existsSync(staging) ? fs.readdirSync(staging) : [], [], 'staging left');
  const registry = path.join(home, '.vibetrees', `${path.basename(path.dirname(project.root))}-${path.basename(project.root)}`, 'ports.json');
  const ports = fs.existsSync(registry) ? JSON.parse(fs.readFileSync(registry, 'utf8')) : {};
  assert.deepEqual(Object.keys(ports).filter((k) => k.startsWith('aborted-here:')), [], 'ports not released');

  // an already aborted signal: nothing is touched; a bad signal throws
  const early = await manager(project).createWorktreeOptimized('never-made', 'main', { signal: AbortSignal.abort() });
  assert.equal(early.code, 'CANCELLED');
  assert.ok(!fs.existsSync(path.join(project.root, '.worktrees', 'never-made')));
  assert.throws(() => wm.createWorktreeOptimized('x', 'main', { signal: 'soon' }), { code: 'INVALID_ARGUMENT', message: /AbortSignal/ });
  // the name is free again
  const again = await manager(project).createWorktreeOptimized('Aborted Here');
  assert.equal(again.success, true, JSON.stringify(again));
});

/** Whether files in `dir` can be opened for direct I/O (O_DIRECT). */
function takesDirectIo(dir) {
  const probe = path.join(dir, '.direct-probe');
  try {
    fs.closeSync(fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | (fs.constants.O_DIRECT ?? 0)));
    return fs.constants.O_DIRECT !== undefined;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

test('include and hooks options: an ignored file is copied, then the host hook sees it', async () => {
  const project = makeProject();
  fs.appendFileSync(path.join(project.root, '.gitignore'), 'local.conf\nbig.cache\n');
  git(project.root, 'commit', '-qam', 'ignore local.conf');
  fs.writeFileSync(path.join(project.root, 'local.conf'), 'from main\n');
  const big = Buffer.alloc(8192 + 11, 'x');
  fs.writeFileSync(path.join(project.root, 'big.cache'), big);
  const wm = manager(project, {
    useCache: false,
    install: false,
    include: ['local.conf', 'big.cache'],
    includeDirectIo: true,
    hooks: { 'post-create': [{ command: 'cp local.conf hook-saw.txt', name: 'saw' }] },
  });
  const result = await wm.createWorktreeOptimized('with-include');
  assert.equal(result.success, true, JSON.stringify(result));
  const wt = result.worktree;
  assert.equal(fs.readFileSync(path.join(wt.path, 'local.conf'), 'utf8'), 'from main\n');
  assert.equal(fs.readFileSync(path.join(wt.path, 'hook-saw.txt'), 'utf8'), 'from main\n');
  assert.equal(wt.steps['copy-ignored'].files, 2);
  // includeDirectIo: the file of 4 KiB or more was written by direct I/O where the filesystem takes it
  assert.deepEqual(fs.readFileSync(path.join(wt.path, 'big.cache')), big);
  assert.equal(wt.steps['copy-ignored'].direct, takesDirectIo(project.root) ? 1 : 0);
  assert.equal(wt.steps['hook:saw'].ok, true);
  assert.deepEqual(wt.hooks.postCreate, ['hook:saw']);
  assert.deepEqual(wt.hooks.skipped, []);
  assert.throws(() => manager(project, { hooks: { 'post-create': [''] } }), { code: 'PARSE' });
  await wm.waitBackground();
});
