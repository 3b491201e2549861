// Profiler: the original API's examples (start/end, nested, getStats, report) and its errors.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Profiler } from '@vibetrees/native';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('start/end times an operation (original example)', async () => {
  const profiler = new Profiler();
  const id = profiler.start('my-operation');
  assert.equal(typeof id, 'string');
  assert.equal(profiler.isRunning(id), true);
  await sleep(15);
  const result = profiler.end(id);
  assert.equal(profiler.isRunning(id), false);
  assert.equal(result.id, id);
  assert.equal(result.name, 'my-operation');
  assert.ok(result.duration >= 10, `duration ${result.duration}`);
  assert.ok(Math.abs(result.endTime - result.startTime - result.duration) < 1e-6);
  assert.deepEqual(result.children, []);
  const stats = profiler.getStats('my-operation');
  assert.equal(stats.count, 1);
  assert.equal(stats.avg, result.duration);
  assert.equal(stats.min, result.duration);
  assert.equal(stats.max, result.duration);
  assert.equal(stats.total, result.duration);
});

test('nested operations: the parent result includes its children (original example)', async () => {
  const profiler = new Profiler();
  const parentId = profiler.start('parent-operation');
  const childId = profiler.start('child-operation', parentId);
  await sleep(2);
  profiler.end(childId);
  await sleep(2);
  profiler.end(parentId);
  const parent = profiler.getResult(parentId);
  assert.equal(parent.children.length, 1);
  assert.equal(parent.children[0].id, childId);
  assert.equal(parent.children[0].name, 'child-operation');
  assert.equal(parent.children[0].parentId, parentId);
  assert.ok(parent.duration >= parent.children[0].duration);
});

test('getStats aggregates runs; percentiles; unknown name is null', () => {
  const profiler = new Profiler();
  for (let i = 0; i < 5; i++) profiler.end(profiler.start('repeat'));
  const stats = profiler.getStats('repeat');
  assert.equal(stats.name, 'repeat');
  assert.equal(stats.count, 5);
  assert.ok(stats.min <= stats.avg && stats.avg <= stats.max);
  assert.ok(Math.abs(stats.total - stats.avg * 5) < 1e-9);
  for (const p of ['p50', 'p95', 'p99']) assert.equal(typeof stats[p], 'number');
  assert.equal(profiler.getStats('never-ran'), null);
});

test('generateReport sorts by total, largest first; getMetrics has the server shape', async () => {
  const profiler = new Profiler();
  const slow = profiler.start('slow');
  await sleep(10);
  profiler.end(slow);
  profiler.end(profiler.start('fast'));
  const report = profiler.generateReport();
  assert.deepEqual(report.operations.map((o) => o.name), ['slow', 'fast']);
  assert.ok(report.totalDuration >= report.operations[0].total);
  const metrics = profiler.getMetrics();
  assert.deepEqual(Object.keys(metrics).sort(), ['avgWorktreeCreation', 'operations', 'totalTime']);
  assert.equal(metrics.avgWorktreeCreation, null);
  assert.deepEqual(Object.keys(metrics.operations[0]).sort(), ['avg', 'count', 'max', 'min', 'name', 'total']);
  const total = profiler.start('create-worktree-total');
  profiler.end(total);
  assert.equal(profiler.getMetrics().avgWorktreeCreation, profiler.getStats('create-worktree-total').avg);
});

test('endFailed, toChromeTrace, now and clear', () => {
  const profiler = new Profiler({ maxResults: 100 });
  const id = profiler.start('flaky');
  const failed = profiler.endFailed(id, 'disk full');
  assert.equal(failed.failed, true);
  assert.equal(failed.error, 'disk full');
  assert.equal(profiler.getStats('flaky').failures, 1);
  const trace = JSON.parse(profiler.toChromeTrace());
  const events = Array.isArray(trace) ? trace : trace.traceEvents;
  assert.ok(events.some((e) => e.name === 'flaky' && e.ph === 'X'), JSON.stringify(events));
  const t = profiler.now();
  assert.ok(t > 0 && profiler.now() >= t);
  profiler.clear();
  assert.equal(profiler.getStats('flaky'), null);
  assert.equal(profiler.getResult(id), null);
});

test('the window of results is bounded; stats still count everything', () => {
  const profiler = new Profiler({ maxResults: 10 });
  const ids = [];
  for (let i = 0; i < 50; i++) {
    const id = profiler.start('op');
    profiler.end(id);
    ids.push(id);
  }
  assert.equal(profiler.getResult(ids[0]), null);
  assert.equal(profiler.getResult(ids[49]).id, ids[49]);
  assert.equal(profiler.getStats('op').count, 50);
});

test('errors: ending an unknown or ended id names it; wrong argument types throw synchronously', () => {
  const profiler = new Profiler();
  assert.throws(() => profiler.end('op-999999'), (err) => {
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'NOT_FOUND');
    assert.match(err.message, /op-999999/);
    return true;
  });
  const id = profiler.start('once');
  profiler.end(id);
  assert.throws(() => profiler.end(id), { code: 'NOT_FOUND', message: new RegExp(id) });
  assert.throws(() => profiler.start('child', 'op-424242'), { code: 'NOT_FOUND', message: /op-424242/ });
  assert.throws(() => profiler.start(42), /string/i);
  assert.throws(() => profiler.end(), /string/i);
  assert.throws(() => new Profiler({ maxResults: 0 }), { code: 'INVALID_ARGUMENT' });
});

test('results stay right with many operations running at once, nested or not', () => {
  const profiler = new Profiler({ maxResults: 5000 });
  const started = [];
  for (let i = 0; i < 3000; i++) started.push([profiler.start(`op-name-${i}`), `op-name-${i}`]);
  const parent = profiler.start('parent');
  const child = profiler.start('child', parent);
  for (const [id, name] of started.reverse()) {
    const r = profiler.end(id);
    assert.equal(r.id, id);
    assert.equal(r.name, name);
    assert.deepEqual(r.children, []);
    assert.ok(r.duration >= 0 && r.endTime >= r.startTime);
  }
  assert.equal(profiler.end(child).parentId, parent);
  assert.equal(profiler.end(parent).children[0].id, child);
  assert.equal(profiler.getStats('op-name-0').count, 1);
  // ids that are not the canonical 'op-<n>' take the checked path
  for (const bad of ['op-01', 'op-', 'op-1.5', 'x', '']) {
    assert.throws(() => profiler.end(bad), { code: 'NOT_FOUND' }, bad);
  }
  assert.throws(() => profiler.start(42), { code: 'INVALID_ARGUMENT', message: /name must be a string/ });
  assert.throws(() => profiler.start('x', 7), { code: 'INVALID_ARGUMENT', message: /parentId must be a string/ });
});

test('more distinct names than the native side interns', () => {
  const profiler = new Profiler({ maxResults: 10 });
  for (let i = 0; i < 5000; i++) {
    const r = profiler.end(profiler.start(`distinct-${i}`));
    assert.equal(r.name, `distinct-${i}`);
  }
  const again = profiler.end(profiler.start('distinct-4999'));
  assert.equal(again.name, 'distinct-4999');
  assert.equal(profiler.getStats('distinct-0').count, 1);
  assert.equal(profiler.generateReport().operations.length > 0, true);
});
