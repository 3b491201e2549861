// Packaging: ESM import and CommonJS require give the same objects; `npm pack` makes a tarball
// that installs into a fresh project outside the repository and works there (JS and TypeScript).
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esm from '@vibetrees/native';
import esmDefault from '@vibetrees/native';
import { tempDir } from './helpers.mjs';

const require = createRequire(import.meta.url);
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bindings-node');
function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

test('ESM import and CommonJS require expose the same API', () => {
  const cjs = require('@vibetrees/native');
  for (const name of ['Profiler', 'PerformanceOptimizer', 'CacheManager', 'WorktreeManager', 'History', 'coreVersion', 'errorCodes']) {
    assert.equal(typeof esm[name], 'function', name);
    assert.equal(esm[name], cjs[name], name);
    assert.equal(esmDefault[name], cjs[name], name);
  }
  assert.match(esm.coreVersion(), /^\d+\.\d+\.\d+/);
  assert.ok(esm.errorCodes().includes('CYCLE'));
});

test('npm pack installs into a fresh project outside the repo and works there', () => {
  const out = tempDir('vt-node-pack-');
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out], pkgDir));
  const files = packed.files.map((f) => f.path);
  for (const f of ['package.json', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'binding.d.ts']) {
    assert.ok(files.includes(f), `${f} not in the tarball: ${files}`);
  }
  assert.ok(files.some((f) => f.endsWith('.node')), 'no native addon in the tarball');
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('node_modules/') || f.startsWith('bench/')));
  const tarball = path.join(out, packed.filename);

  const app = tempDir('vt-node-app-');
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], app);
  assert.ok(fs.existsSync(path.join(app, 'node_modules', '@vibetrees', 'native', 'index.js')));

  fs.writeFileSync(
    path.join(app, 'esm.mjs'),
    `import { Profiler, PerformanceOptimizer, WorktreeManager } from '@vibetrees/native';
const p = new Profiler();
const id = p.start('outer');
p.end(p.start('inner', id));
p.end(id);
const opt = new PerformanceOptimizer({ profiler: p, concurrency: 2 });
const r = await opt.runWithDependencies([
  { name: 'a', fn: async () => 20 },
  { name: 'b', dependencies: ['a'], fn: async (d) => d.a + 1 },
]);
console.log(JSON.stringify({ b: r.get('b'), children: p.getResult(id).children.length, steps: WorktreeManager.stepNames.length }));
`,
  );
  fs.writeFileSync(
    path.join(app, 'cjs.cjs'),
    `const { CacheManager, Profiler } = require('@vibetrees/native');
const env = new CacheManager({ cacheDir: require('path').join(__dirname, 'cache') }).getDockerCacheEnv();
try { new Profiler().end('op-1'); } catch (e) { console.log(JSON.stringify({ code: e.code, buildkit: env.DOCKER_BUILDKIT })); }
`,
  );
  assert.deepEqual(JSON.parse(run(process.execPath, ['esm.mjs'], app)), { b: 21, children: 1, steps: 10 });
  assert.deepEqual(JSON.parse(run(process.execPath, ['cjs.cjs'], app)), { code: 'NOT_FOUND', buildkit: '1' });

  // the types resolve and check from the installed package
  const tsc = path.join(pkgDir, 'node_modules', 'typescript', 'bin', 'tsc');
  if (fs.existsSync(tsc)) {
    fs.writeFileSync(
      path.join(app, 'consumer.mts'),
      `import { Profiler, PerformanceOptimizer, WorktreeManager, CacheManager, type CreateWorktreeResult, type Metrics } from '@vibetrees/native';
const p: Profiler = new Profiler({ maxResults: 10 });
const r = p.end(p.start('x'));
const d: number = r.duration;
const opt = new PerformanceOptimizer({ profiler: p });
const m: Promise<Map<string, any>> = opt.runWithDependencies([{ name: 'a', fn: async () => 1, dependencies: [] }]);
const c = new CacheManager({ cacheDir: '/tmp/x' });
const valid: boolean = c.isCacheValid('/tmp');
async function create(w: WorktreeManager): Promise<string> {
  const res: CreateWorktreeResult = await w.createWorktreeOptimized('feature/x');
  const metrics: Metrics = w.getPerformanceMetrics();
  if (res.success && 'worktree' in res) return res.worktree.path + metrics.totalTime;
  return res.success ? res.path : res.error + res.code;
}
export { d, m, valid, create };
`,
    );
    run(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'consumer.mts'], app);
  }
});
