// index.d.ts is written by hand: these tests compare its shapes with real results. Every key of a
// real creation result, restore outcome and graph run report appears in the declared types, and
// every declared key appears in the real results; the ErrorCode union and the WorktreeSettings
// keys match what the native side reports. (The declarations are read with TypeScript's parser.)
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { WorktreeManager, CacheManager, PerformanceOptimizer, errorCodes } from '@vibetrees/native';
import { tempHome, tempDir, makeProject } from './helpers.mjs';

tempHome();
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bindings-node');
const require = createRequire(path.join(pkgDir, 'package.json'));
const ts = require('typescript');
const native = require('./binding.js');

/** The interfaces and type aliases of index.d.ts, by name. */
function declarations() {
  const file = path.join(pkgDir, 'index.d.ts');
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const decls = new Map();
  src.forEachChild((n) => {
    if (ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n)) decls.set(n.name.text, n);
  });
  return decls;
}
const decls = declarations();

/** A type node, with references to declarations, arrays and `X | null` resolved to the object type. */
function resolve(node) {
  if (!node) return node;
  if (ts.isTypeAliasDeclaration(node)) return resolve(node.type);
  if (ts.isTypeReferenceNode(node)) {
    const name = node.typeName.getText();
    if (name === 'Array') return resolve(node.typeArguments[0]);
    assert.ok(decls.has(name), `index.d.ts declares no ${name}`);
    return resolve(decls.get(name));
  }
  if (ts.isArrayTypeNode(node)) return resolve(node.elementType);
  if (ts.isUnionTypeNode(node)) {
    const objects = node.types.filter((t) => !(ts.isLiteralTypeNode(t) && t.literal.kind === ts.SyntaxKind.NullKeyword));
    return objects.length === 1 ? resolve(objects[0]) : node;
  }
  return node;
}

/** The declared members of an interface (with what it extends) or a type literal: name -> type. */
function members(node, optional = new Set()) {
  node = resolve(node);
  const out = new Map();
  for (const h of node.heritageClauses ?? []) {
    for (const t of h.types) for (const [k, v] of members(decls.get(t.expression.getText()), optional)) out.set(k, v);
  }
  for (const m of node.members ?? []) {
    if (!ts.isPropertySignature(m)) continue;
    const name = m.name.text ?? m.name.getText();
    out.set(name, m.type);
    if (m.questionToken) optional.add(name);
  }
  return out;
}

/** The member of union `name` whose literal properties match `value` (e.g. `success: false`). */
function unionMember(name, value) {
  const union = resolve(decls.get(name));
  for (const t of union.types) {
    const ms = members(t);
    const fits = [...ms].every(([k, type]) => {
      if (!ts.isLiteralTypeNode(type) || type.literal.kind === ts.SyntaxKind.StringLiteral) return k in value;
      return String(value[k]) === type.literal.getText();
    });
    if (fits && Object.keys(value).every((k) => ms.has(k))) return t;
  }
  assert.fail(`no member of ${name} fits ${JSON.stringify(value)}`);
}

/** Every real key of `value` is declared in `node`, and every declared key (but optional ones)
 *  is in `value`, at `where`. */
function sameKeys(node, value, where) {
  const optional = new Set();
  const declared = [...members(node, optional).keys()];
  const real = Object.keys(value);
  assert.deepEqual(real.filter((k) => !declared.includes(k)), [], `${where}: keys not in index.d.ts`);
  assert.deepEqual(
    declared.filter((k) => !optional.has(k) && !real.includes(k)),
    [],
    `${where}: declared keys missing from a real result`,
  );
}

test('a real creation result (created, existed, failed) has exactly the declared keys', async () => {
  const project = makeProject();
  await new CacheManager({ cacheDir: project.cacheDir }).cacheNodeModules(path.join(project.root, 'node_modules'));
  const wm = new WorktreeManager({ rootDir: project.root, cacheDir: project.cacheDir, historyPath: project.historyPath, runtime: 'none' });
  const made = await wm.createWorktreeOptimized('typed');
  assert.equal(made.success, true, JSON.stringify(made));
  sameKeys(unionMember('CreateWorktreeResult', made), made, 'created result');
  const worktree = members(decls.get('CreatedWorktree'));
  sameKeys(decls.get('CreatedWorktree'), made.worktree, 'worktree');
  sameKeys(worktree.get('cache'), made.worktree.cache, 'worktree.cache');
  for (const t of made.worktree.timings) sameKeys(worktree.get('timings'), t, `timings ${t.name}`);
  const existed = await wm.createWorktreeOptimized('typed');
  sameKeys(unionMember('CreateWorktreeResult', existed), existed, 'existed result');
  const failed = await wm.createWorktreeOptimized('..');
  sameKeys(unionMember('CreateWorktreeResult', failed), failed, 'failed result');
  await wm.waitBackground();
});

test('a real pool status, spare, fill report and claimed creation have exactly the declared keys', async () => {
  const project = makeProject();
  const wm = new WorktreeManager({ rootDir: project.root, cacheDir: project.cacheDir, historyPath: project.historyPath, runtime: 'none', poolSize: 1 });
  const report = await wm.fillPool();
  assert.equal(report.made, 1, JSON.stringify(report));
  sameKeys(decls.get('PoolFillReport'), report, 'fill report');
  const status = await wm.poolStatus();
  sameKeys(decls.get('PoolStatus'), status, 'pool status');
  assert.equal(status.spares.length, 1);
  sameKeys(members(decls.get('PoolStatus')).get('spares'), status.spares[0], 'spare');
  const claimed = await wm.createWorktreeOptimized('claimed');
  assert.equal(claimed.worktree.pool.claimed, true, JSON.stringify(claimed.worktree.pool));
  sameKeys(decls.get('CreatedWorktree'), claimed.worktree, 'claimed worktree');
  sameKeys(members(decls.get('CreatedWorktree')).get('pool'), claimed.worktree.pool, 'worktree.pool (claimed)');
  await wm.waitBackground();
  await wm.clearPool();
});

test('a real restore outcome (hit and miss) has exactly the declared keys', async () => {
  const project = makeProject();
  const cache = new CacheManager({ cacheDir: project.cacheDir });
  await cache.cacheNodeModules(path.join(project.root, 'node_modules'));
  const target = path.join(tempDir('vt-node-types-'), 'copy');
  fs.mkdirSync(target);
  fs.copyFileSync(path.join(project.root, 'package.json'), path.join(target, 'package.json'));
  fs.copyFileSync(path.join(project.root, 'package-lock.json'), path.join(target, 'package-lock.json'));
  const hit = await cache.restoreNodeModules(path.join(target, 'node_modules'));
  assert.equal(hit.restored, true, JSON.stringify(hit));
  sameKeys(decls.get('RestoreOutcome'), hit, 'restore outcome');
  const stats = members(decls.get('RestoreOutcome')).get('stats');
  sameKeys(stats, hit.stats, 'restore stats');
  for (const ph of hit.stats.phases) sameKeys(members(stats).get('phases'), ph, 'phase');
  const miss = await new CacheManager({ cacheDir: tempDir('vt-node-empty-') }).restoreNodeModules(path.join(target, 'nm2'));
  assert.equal(miss.restored, false);
  sameKeys(decls.get('RestoreOutcome'), miss, 'restore miss');
});

test('a real graph run report has exactly the declared keys', async () => {
  const optimizer = new PerformanceOptimizer();
  const { report } = await optimizer.runGraph([
    { name: 'ok', fn: async () => 1 },
    { name: 'bad', optional: true, fn: async () => { throw new Error('no'); } },
    { name: 'after', dependencies: ['ok'], fn: async () => 2 },
  ]);
  sameKeys(decls.get('RunReport'), report, 'run report');
  const task = members(decls.get('RunReport')).get('tasks');
  for (const t of report.tasks) sameKeys(task, t, `task ${t.name}`);
  const failed = report.tasks.find((t) => t.name === 'bad');
  sameKeys(members(task).get('error'), failed.error, 'task error');
});

test('the ErrorCode union and the settings keys are the native ones', () => {
  const union = resolve(decls.get('ErrorCode'));
  const declared = union.types.map((t) => t.literal.text).sort();
  assert.deepEqual(declared, [...errorCodes()].sort());
  const settings = [...members(decls.get('WorktreeSettings')).keys()].sort();
  // every settings key is declared optional but rootDir
  assert.deepEqual(settings, native.worktreeSettingKeys().sort(), 'WorktreeSettings vs the core');
});
