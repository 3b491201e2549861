// Benchmark: the native scheduler running JavaScript async functions, against the original
// level-by-level JavaScript optimizer (bench/original-optimizer.mjs).
//
//   node bench/optimizer.mjs      # build the addon in release first (npm run build)
//
// 1. Overhead per task: 1,000 independent no-op tasks (runParallel) and a chain of 200 no-op tasks
//    (runWithDependencies), median of alternating runs (A B A B ...).
// 2. Makespan of an uneven graph (timer-based tasks): `slow` (60 ms) and `fast` (10 ms) start at
//    once; `after-fast` (40 ms) needs only `fast`; `last` needs `slow` and `after-fast`. Starting a
//    task as soon as its own dependencies are done finishes at ~60 ms; level by level at ~100 ms.
import { createRequire } from 'node:module';
import { OriginalOptimizer } from './original-optimizer.mjs';

const require = createRequire(import.meta.url);
const { PerformanceOptimizer } = require('../index.js');

const ROUNDS = 9;
const contenders = { native: new PerformanceOptimizer(), original: new OriginalOptimizer() };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const independent = Array.from({ length: 1000 }, (_, i) => ({ name: `t${i}`, fn: async () => i }));
const chain = Array.from({ length: 200 }, (_, i) => ({
  name: `c${i}`,
  dependencies: i ? [`c${i - 1}`] : [],
  fn: async (deps) => (i ? deps[`c${i - 1}`] + 1 : 0),
}));
const uneven = [
  { name: 'slow', fn: () => sleep(60) },
  { name: 'fast', fn: () => sleep(10) },
  { name: 'after-fast', dependencies: ['fast'], fn: () => sleep(40) },
  { name: 'last', dependencies: ['slow', 'after-fast'], fn: async () => 'done' },
];

async function time(f) {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6; // ms
}

const cases = {
  'runParallel, 1,000 no-op tasks': (o) => o.runParallel(independent),
  'runWithDependencies, chain of 200 no-op tasks': (o) => o.runWithDependencies(chain),
  'runWithDependencies, uneven graph (makespan)': (o) => o.runWithDependencies(uneven),
};

for (const [label, run] of Object.entries(cases)) {
  for (const o of Object.values(contenders)) await run(o); // warm-up
  const times = { native: [], original: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of r % 2 ? ['original', 'native'] : ['native', 'original']) {
      times[kind].push(await time(() => run(contenders[kind])));
    }
  }
  const n = median(times.native);
  const o = median(times.original);
  console.log(`${label}: native ${n.toFixed(2)} ms, original ${o.toFixed(2)} ms (original/native ${(o / n).toFixed(2)}x)`);
}
