// PerformanceOptimizer: JavaScript async functions run by the native scheduler.
// Scheduling tests assert ORDER (who started before whom), never wall-clock thresholds.
import test from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceOptimizer, Profiler } from '@vibetrees/native';

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A gate: tasks wait on it; the test opens it once all expected tasks have started. */
function gate() {
  let open;
  const opened = new Promise((r) => (open = r));
  return { opened, open };
}

test('runParallel runs independent tasks at once and returns results in input order (original example)', async () => {
  const optimizer = new PerformanceOptimizer();
  const started = [];
  const g = gate();
  const task = (name, value, delay) => ({
    name,
    fn: async () => {
      started.push(name);
      if (started.length === 3) g.open();
      await g.opened; // every task must have started before any can finish
      await sleep(delay);
      return value;
    },
  });
  const results = await optimizer.runParallel([task('task1', 'one', 20), task('task2', 2, 1), task('task3', { three: 3 }, 5)]);
  assert.deepEqual(results, ['one', 2, { three: 3 }]);
  assert.deepEqual([...started].sort(), ['task1', 'task2', 'task3']);
});

test('runParallel keeps JavaScript values as they are (objects, functions, undefined)', async () => {
  const optimizer = new PerformanceOptimizer();
  const obj = { big: 1n };
  const fn = () => 42;
  const results = await optimizer.runParallel([
    { name: 'obj', fn: async () => obj },
    { name: 'fn', fn: async () => fn },
    { name: 'undef', fn: async () => undefined },
    { name: 'sync', fn: () => 'not a promise' },
  ]);
  assert.equal(results[0], obj);
  assert.equal(results[1], fn);
  assert.equal(results[2], undefined);
  assert.equal(results[3], 'not a promise');
});

test('runParallel rejects with the failing task\'s own error', async () => {
  const optimizer = new PerformanceOptimizer();
  const boom = new Error('boom from task2');
  await assert.rejects(
    optimizer.runParallel([
      { name: 'task1', fn: async () => 1 },
      { name: 'task2', fn: async () => { throw boom; } },
    ]),
    (err) => err === boom,
  );
  await assert.rejects(
    optimizer.runParallel([{ name: 'sync-throw', fn: () => { throw new RangeError('sync boom'); } }]),
    { name: 'RangeError', message: 'sync boom' },
  );
});

test('runWithDependencies passes a dependency\'s result on and returns a Map (original example)', async () => {
  const optimizer = new PerformanceOptimizer();
  const order = [];
  const tasks = [
    {
      name: 'fetch-data',
      fn: async () => {
        order.push('fetch-data');
        await sleep(5);
        return { rows: [1, 2, 3] };
      },
      dependencies: [],
    },
    {
      name: 'process-data',
      fn: async (deps) => {
        order.push('process-data');
        return deps['fetch-data'].rows.map((x) => x * 2);
      },
      dependencies: ['fetch-data'],
    },
  ];
  const results = await optimizer.runWithDependencies(tasks);
  assert.ok(results instanceof Map);
  assert.deepEqual(results.get('fetch-data'), { rows: [1, 2, 3] });
  assert.deepEqual(results.get('process-data'), [2, 4, 6]);
  assert.deepEqual(order, ['fetch-data', 'process-data']);
});

test('a task starts as soon as its own dependencies are done, not when a whole level is', async () => {
  // a (fast) -> c ; b (slow, independent). c must start before b ends.
  const optimizer = new PerformanceOptimizer();
  const events = [];
  const bRelease = gate();
  const results = await optimizer.runWithDependencies([
    { name: 'a', fn: async () => { events.push('a:start'); await tick(); events.push('a:end'); return 'A'; } },
    {
      name: 'b',
      fn: async () => {
        events.push('b:start');
        await bRelease.opened;
        events.push('b:end');
        return 'B';
      },
    },
    {
      name: 'c',
      dependencies: ['a'],
      fn: async (deps) => {
        events.push('c:start');
        assert.deepEqual(deps, { a: 'A' });
        bRelease.open();
        return 'C';
      },
    },
    { name: 'd', dependencies: ['b', 'c'], fn: async (deps) => `${deps.b}${deps.c}` },
  ]);
  assert.ok(events.indexOf('c:start') < events.indexOf('b:end'), events.join(' '));
  assert.equal(results.get('d'), 'BC');
  assert.deepEqual([...results.keys()].sort(), ['a', 'b', 'c', 'd']);
});

test('concurrency limits how many tasks run at once', async () => {
  const optimizer = new PerformanceOptimizer({ concurrency: 2 });
  let running = 0;
  let peak = 0;
  const tasks = Array.from({ length: 6 }, (_, i) => ({
    name: `t${i}`,
    fn: async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(3);
      running--;
      return i;
    },
  }));
  assert.deepEqual(await optimizer.runParallel(tasks), [0, 1, 2, 3, 4, 5]);
  assert.equal(peak, 2);
});

test('graph errors reject before anything runs: cycle path, unknown dependency, duplicate name', async () => {
  const optimizer = new PerformanceOptimizer();
  let ran = false;
  const fn = async () => { ran = true; };
  await assert.rejects(
    optimizer.runWithDependencies([
      { name: 'a', fn, dependencies: ['b'] },
      { name: 'b', fn, dependencies: ['c'] },
      { name: 'c', fn, dependencies: ['a'] },
      { name: 'free', fn },
    ]),
    (err) => {
      assert.equal(err.code, 'CYCLE');
      assert.match(err.message, /(a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/);
      return true;
    },
  );
  await assert.rejects(
    optimizer.runWithDependencies([{ name: 'a', fn, dependencies: ['missing'] }]),
    (err) => err.code === 'INVALID_GRAPH' && /missing/.test(err.message) && /a/.test(err.message),
  );
  await assert.rejects(
    optimizer.runWithDependencies([{ name: 'twice', fn }, { name: 'twice', fn }]),
    (err) => err.code === 'INVALID_GRAPH' && /twice/.test(err.message),
  );
  assert.equal(ran, false);
});

test('a failing task rejects with its own error; its dependents do not run', async () => {
  const optimizer = new PerformanceOptimizer();
  let dependentRan = false;
  const own = new Error('database copy failed');
  await assert.rejects(
    optimizer.runWithDependencies([
      { name: 'copy-db', fn: async () => { throw own; } },
      { name: 'start-api', dependencies: ['copy-db'], fn: async () => { dependentRan = true; } },
    ]),
    (err) => err === own,
  );
  assert.equal(dependentRan, false);
  const report = optimizer.lastRun;
  assert.equal(report.success, false);
  assert.equal(report.failedTask, 'copy-db');
  const byName = Object.fromEntries(report.tasks.map((t) => [t.name, t]));
  assert.equal(byName['copy-db'].status, 'failed');
  assert.equal(byName['copy-db'].error.message, 'database copy failed');
  assert.equal(byName['start-api'].status, 'skipped');
});

test('runGraph reports the critical path; dryRun plans without running', async () => {
  const optimizer = new PerformanceOptimizer();
  const { results, report } = await optimizer.runGraph([
    { name: 'git', fn: async () => { await sleep(20); return 'g'; } },
    { name: 'ports', fn: async () => 'p' },
    { name: 'install', dependencies: ['git'], fn: async () => { await sleep(5); return 'i'; } },
  ]);
  assert.equal(results.get('install'), 'i');
  assert.equal(report.success, true);
  assert.deepEqual(report.criticalPath, ['git', 'install']);
  let ran = false;
  const plan = optimizer.dryRun([
    { name: 'a', fn: () => { ran = true; } },
    { name: 'b', dependencies: ['a'], fn: () => { ran = true; } },
  ]);
  assert.equal(ran, false);
  assert.deepEqual(plan.order, ['a', 'b']);
});

test('with a profiler, every task is recorded under its name', async () => {
  const profiler = new Profiler();
  const optimizer = new PerformanceOptimizer({ profiler });
  assert.equal(optimizer.profiler, profiler);
  await optimizer.runWithDependencies([
    { name: 'step-one', fn: async () => 1 },
    { name: 'step-two', dependencies: ['step-one'], fn: async () => 2 },
  ]);
  assert.equal(profiler.getStats('step-one').count, 1);
  assert.equal(profiler.getStats('step-two').count, 1);
  // the profiler may also be passed as the only argument
  await new PerformanceOptimizer(profiler).runParallel([{ name: 'step-one', fn: async () => 1 }]);
  assert.equal(profiler.getStats('step-one').count, 2);
});

test('programmer errors throw synchronously with a clear message', () => {
  const optimizer = new PerformanceOptimizer();
  assert.throws(() => optimizer.runParallel('nope'), { code: 'INVALID_ARGUMENT', message: /array/ });
  assert.throws(() => optimizer.runParallel([{ name: 'x' }]), { code: 'INVALID_ARGUMENT', message: /fn must be a function/ });
  assert.throws(() => optimizer.runWithDependencies([{ name: 1, fn() {} }]), { code: 'INVALID_ARGUMENT', message: /name must be a string/ });
  assert.throws(() => optimizer.runWithDependencies([{ name: 'a', fn() {}, dependencies: 'b' }]), { code: 'INVALID_ARGUMENT', message: /dependencies/ });
  assert.throws(() => new PerformanceOptimizer({ concurrency: 0 }), { code: 'INVALID_ARGUMENT', message: /concurrency/ });
  assert.throws(() => new PerformanceOptimizer({ profiler: {} }), { code: 'INVALID_ARGUMENT', message: /Profiler/ });
});

test('the event loop keeps running while tasks are scheduled natively', async () => {
  const optimizer = new PerformanceOptimizer();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await optimizer.runWithDependencies(
    Array.from({ length: 20 }, (_, i) => ({
      name: `n${i}`,
      dependencies: i ? [`n${i - 1}`] : [],
      fn: () => sleep(2),
    })),
  );
  clearInterval(timer);
  assert.ok(ticks > 0);
});

test('an AbortSignal cancels a run: nothing new starts, it rejects with CANCELLED', async () => {
  const optimizer = new PerformanceOptimizer();
  const controller = new AbortController();
  const started = [];
  const run = optimizer.runWithDependencies(
    [
      { name: 'first', fn: async () => { started.push('first'); controller.abort(); await sleep(20); return 1; } },
      { name: 'second', dependencies: ['first'], fn: async () => { started.push('second'); } },
    ],
    { signal: controller.signal },
  );
  await assert.rejects(run, { code: 'CANCELLED' });
  assert.deepEqual(started, ['first']);
  assert.equal(optimizer.lastRun.cancelled, true);

  const aborted = AbortSignal.abort();
  let ran = false;
  await assert.rejects(
    optimizer.runParallel([{ name: 'x', fn: async () => { ran = true; } }], { signal: aborted }),
    { code: 'CANCELLED' },
  );
  assert.equal(ran, false);
  assert.throws(() => optimizer.runParallel([], { signal: 'nope' }), { code: 'INVALID_ARGUMENT', message: /AbortSignal/ });
  // a signal that never aborts changes nothing
  assert.deepEqual(await optimizer.runParallel([{ name: 'y', fn: async () => 2 }], { signal: new AbortController().signal }), [2]);
});
