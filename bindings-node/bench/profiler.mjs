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
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { OriginalProfiler } from './original-profiler.mjs';

const require = createRequire(import.meta.url);
const { Profiler } = require('../index.js');

const BATCH = 100_000;
// V8 grows its young generation (up to 2 x 16 MB here) under allocation pressure, which shows as
// RSS growth of any allocating program; the memory runs fix its size so only retained memory shows.
const YOUNG_GEN_FIXED = ['--min-semi-space-size=16', '--max-semi-space-size=16'];
const ROUNDS = 9;
const MEMORY_OPS = 1_000_000; // and as many again, to see whether memory keeps growing
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
  const mb = (bytes) => bytes / 2 ** 20;
  const newSpace = () => v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space').space_size;
  global.gc?.();
  const before = process.memoryUsage();
  const profiler = make[kind]();
  let i = 0;
  const run = (until) => {
    for (; i < until; i++) profiler.end(profiler.start(`op-${i % 16}`));
    global.gc?.();
    return process.memoryUsage();
  };
  const at1 = run(MEMORY_OPS);
  const youngAt1 = newSpace();
  const at2 = run(2 * MEMORY_OPS);
  // keep the profiler alive until measured
  if (!profiler.getStats('op-1')) throw new Error('no stats');
  return {
    kind,
    ops: MEMORY_OPS,
    heapMB: mb(at1.heapUsed - before.heapUsed),
    rssMB: mb(at1.rss - before.rss),
    youngGenMB: mb(youngAt1),
    heapMoreMB: mb(at2.heapUsed - at1.heapUsed),
    rssMoreMB: mb(at2.rss - at1.rss),
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
  console.log(`memory (own process each, after gc): growth after ${MEMORY_OPS.toLocaleString('en')} operations, then over the next ${MEMORY_OPS.toLocaleString('en')}:`);
  const sign = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  for (const kind of ['native', 'original']) {
    const out = execFileSync(process.execPath, ['--expose-gc', ...YOUNG_GEN_FIXED, self, '--memory', kind], {
      encoding: 'utf8',
    });
    const m = JSON.parse(out.trim().split('\n').pop());
    console.log(
      `  ${kind.padEnd(9)}: heap ${sign(m.heapMB)} MB, rss ${sign(m.rssMB)} MB (V8 young generation ${m.youngGenMB.toFixed(0)} MB);` +
        ` next ${MEMORY_OPS.toLocaleString('en')}: heap ${sign(m.heapMoreMB)} MB, rss ${sign(m.rssMoreMB)} MB`,
    );
  }
}
