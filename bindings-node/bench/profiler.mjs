// Benchmark: a start+end pair called from JavaScript through @vibetrees/native, against the
// original pure-JavaScript Profiler (bench/original-profiler.mjs), and the heap/RSS growth of each
// after 1,000,000 operations.
//
//   node --expose-gc bench/profiler.mjs            # both parts; build the addon in release first
//   node --expose-gc bench/profiler.mjs --memory native|original   # one memory run (child process)
//
// Time: contenders alternate (A B A B ...) in batches of BATCH pairs on a fresh profiler each;
// the report gives medians and the ratio. Memory: each contender runs in its own process.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OriginalProfiler } from './original-profiler.mjs';

const require = createRequire(import.meta.url);
const { Profiler } = require('../index.js');

const BATCH = 100_000;
const ROUNDS = 9;
const MEMORY_OPS = 1_000_000;
const make = { native: () => new Profiler(), original: () => new OriginalProfiler() };

function pairs(profiler, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const id = profiler.start('bench-op');
    profiler.end(id);
  }
  return Number(process.hrtime.bigint() - t0) / n; // ns per pair
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function memory(kind) {
  global.gc?.();
  const before = process.memoryUsage();
  const profiler = make[kind]();
  for (let i = 0; i < MEMORY_OPS; i++) profiler.end(profiler.start(`op-${i % 16}`));
  global.gc?.();
  const after = process.memoryUsage();
  // keep the profiler alive until measured
  if (!profiler.getStats('op-1')) throw new Error('no stats');
  return {
    kind,
    ops: MEMORY_OPS,
    heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
    rssMB: (after.rss - before.rss) / 2 ** 20,
  };
}

const argIndex = process.argv.indexOf('--memory');
if (argIndex >= 0) {
  console.log(JSON.stringify(memory(process.argv[argIndex + 1])));
} else {
  // warm up both
  pairs(make.native(), 20_000);
  pairs(make.original(), 20_000);
  const times = { native: [], original: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of r % 2 ? ['original', 'native'] : ['native', 'original']) {
      times[kind].push(pairs(make[kind](), BATCH));
    }
  }
  const n = median(times.native);
  const o = median(times.original);
  console.log(`start+end pair, median of ${ROUNDS} alternating batches of ${BATCH}:`);
  console.log(`  @vibetrees/native Profiler : ${(n / 1000).toFixed(3)} µs`);
  console.log(`  original JS Profiler       : ${(o / 1000).toFixed(3)} µs`);
  console.log(`  ratio original/native      : ${(o / n).toFixed(2)}x`);
  const self = fileURLToPath(import.meta.url);
  console.log(`memory after ${MEMORY_OPS.toLocaleString('en')} operations (own process each, after gc):`);
  for (const kind of ['native', 'original']) {
    const out = execFileSync(process.execPath, ['--expose-gc', self, '--memory', kind], {
      encoding: 'utf8',
    });
    const m = JSON.parse(out.trim().split('\n').pop());
    console.log(`  ${kind.padEnd(9)}: heap ${m.heapMB >= 0 ? '+' : ''}${m.heapMB.toFixed(1)} MB, rss ${m.rssMB >= 0 ? '+' : ''}${m.rssMB.toFixed(1)} MB`);
  }
}
