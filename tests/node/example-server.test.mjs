// The example server (bindings-node/examples/server/: real express and ws from npm, the package
// from this repository) started on a free loopback port and driven with real HTTP requests and a
// real WebSocket client: two creations at once, the listing with ports, a deletion that keeps the
// other worktree's ports, the metrics with our step names, and the event loop responsive
// throughout (timer drift). HOME points at a temporary folder.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CacheManager } from '@vibetrees/native';
import { tempHome, makeProject } from './helpers.mjs';

tempHome();
const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bindings-node/examples/server');
const { startServer } = await import(path.join(exampleDir, 'server.mjs'));
const WebSocket = createRequire(path.join(exampleDir, 'package.json'))('ws');

/** Largest lateness of a 20 ms interval timer while it runs (event-loop blocking shows here). */
function driftMeter() {
  let expected = performance.now() + 20;
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - expected);
    expected = now + 20;
  }, 20);
  return { stop: () => (clearInterval(timer), worst) };
}

test('create two at once, list with ports, delete one, read metrics; the loop stays responsive', async () => {
  const project = makeProject();
  await new CacheManager({ cacheDir: project.cacheDir }).cacheNodeModules(path.join(project.root, 'node_modules'));
  const srv = await startServer({
    rootDir: project.root,
    port: 0,
    host: '127.0.0.1',
    runtime: 'none',
    cacheDir: project.cacheDir,
    historyPath: project.historyPath,
  });
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/ws`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const messages = [];
  const created = new Map();
  let settle;
  const allCreated = new Promise((r) => (settle = r));
  ws.on('message', (raw) => {
    const msg = JSON.parse(raw.toString());
    messages.push(msg);
    if (msg.type === 'worktree:created') created.set(msg.data.worktree.name, msg.data);
    if (msg.type === 'worktree:error') created.set(`error:${messages.length}`, msg.data);
    if (created.size === 2) settle();
  });
  const drift = driftMeter();
  try {
    // two at once: both answered before either creation is done
    const [a, b] = await Promise.all(
      ['feature/alpha', 'feature/beta'].map((branchName) =>
        fetch(`${srv.url}/api/worktrees`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ branchName }),
        }),
      ),
    );
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.deepEqual(await a.json(), { accepted: true, branchName: 'feature/alpha' });
    await b.json();
    const bad = await fetch(`${srv.url}/api/worktrees`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(bad.status, 400);
    await allCreated;
    assert.deepEqual([...created.keys()].sort(), ['feature-alpha', 'feature-beta'], JSON.stringify([...created.values()]));
    for (const name of ['feature-alpha', 'feature-beta']) {
      const progress = messages.filter((m) => m.type === 'worktree:progress' && m.data.name === name).map((m) => m.data.step);
      for (const step of ['git', 'ports', 'database', 'database-restore', 'complete']) assert.ok(progress.includes(step), `${name}: ${step} not in ${progress}`);
      // created is sent after the creation's last progress event
      const lastProgress = messages.findLastIndex((m) => m.type === 'worktree:progress' && m.data.name === name && m.data.step === 'complete');
      const createdAt = messages.findIndex((m) => m.type === 'worktree:created' && m.data.worktree.name === name);
      assert.ok(lastProgress < createdAt);
    }

    // the listing, with ports from the registry
    const list = await (await fetch(`${srv.url}/api/worktrees`)).json();
    assert.deepEqual(list.map((w) => w.name).sort(), ['feature-alpha', 'feature-beta', 'main']);
    const ports = Object.fromEntries(list.map((w) => [w.name, w.ports]));
    assert.deepEqual(ports['feature-alpha'], created.get('feature-alpha').worktree.ports);
    assert.deepEqual(ports['feature-beta'], created.get('feature-beta').worktree.ports);
    assert.ok(ports['feature-alpha'].postgres > 0);
    assert.notEqual(ports['feature-alpha'].postgres, ports['feature-beta'].postgres);

    // delete one: the other keeps its ports
    const del = await fetch(`${srv.url}/api/worktrees/feature-alpha`, { method: 'DELETE' });
    assert.equal(del.status, 200, await del.clone().text());
    const after = await (await fetch(`${srv.url}/api/worktrees`)).json();
    assert.deepEqual(after.map((w) => w.name).sort(), ['feature-beta', 'main']);
    assert.deepEqual(after.find((w) => w.name === 'feature-beta').ports, ports['feature-beta']);
    assert.deepEqual(srv.registry.getWorktreePorts('feature-alpha'), {});
    const file = JSON.parse(fs.readFileSync(srv.registry.registryFile, 'utf8'));
    assert.ok(Object.keys(file).some((k) => k.startsWith('feature-beta:')));
    assert.ok(!Object.keys(file).some((k) => k.startsWith('feature-alpha:')));

    // the metrics come from the server's profiler, with our step names
    const metrics = await (await fetch(`${srv.url}/api/performance/metrics`)).json();
    const names = metrics.operations.map((o) => o.name);
    for (const step of ['create-worktree-total', 'git-worktree-add', 'allocate-ports', 'mcp-discovery', 'npm-bootstrap', 'docker-compose-up', 'database-copy', 'database-restore']) {
      assert.ok(names.includes(step), `${step} not in ${names}`);
    }
    assert.equal(metrics.operations.find((o) => o.name === 'create-worktree-total').count, 2);
    assert.equal(typeof metrics.avgWorktreeCreation, 'number');
    assert.deepEqual(Object.keys(metrics.operations[0]).sort(), ['avg', 'count', 'max', 'min', 'name', 'total']);
  } finally {
    const worst = drift.stop();
    console.log(`worst timer lateness during the run: ${worst.toFixed(1)} ms`);
    ws.close();
    await srv.close();
    // a behaviour check, not a speed one: creations run off the JS thread, so no timer tick is
    // held up for long (a blocked loop would show the creation's whole duration here)
    assert.ok(worst < 1000, `the event loop was blocked for ${worst.toFixed(0)} ms`);
  }
});
