// PortRegistry: the server's calls give the server's results; never stale; changes touch only
// their keys; three processes (this one, the vibetrees CLI, and plain Node with the real npm
// proper-lockfile@4) writing one registry at once never hand out a port twice nor lose a key.
// HOME points at a temporary folder.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PortRegistry } from '@vibetrees/native';
import { tempHome, tempDir, cliPath, properLockfileDir } from './helpers.mjs';

const home = tempHome();
const here = path.dirname(fileURLToPath(import.meta.url));

/** A port with `n` free ports after it (binds port 0 to find one). */
async function freeBase(n) {
  for (;;) {
    const port = await new Promise((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const reg = new PortRegistry('/probe/only');
    let free = port < 60000;
    for (let q = port; free && q < port + n; q++) free = !reg.isPortInUseSync(q);
    if (free) return port;
  }
}

test('the server calls give the server results, from the file every time', async () => {
  const root = '/home/me/code/shop';
  const reg = new PortRegistry(root);
  assert.equal(reg.projectRoot, root);
  assert.equal(reg.registryDir, path.join(home, '.vibetrees', 'code-shop'));
  assert.equal(reg.registryFile, path.join(home, '.vibetrees', 'code-shop', 'ports.json'));
  assert.deepEqual(reg.ports, {});
  const base = await freeBase(6);
  assert.equal(reg.allocate('feat-a', 'postgres', base), base);
  assert.equal(reg.allocate('feat-a', 'api', base), base + 1);
  assert.equal(reg.allocate('feat-a', 'postgres', base + 50), base, 'an existing key keeps its port');
  assert.deepEqual(await reg.allocateAtomic('feat-b', { web: base, api: base }), { web: base + 2, api: base + 3 });
  assert.equal(
    fs.readFileSync(reg.registryFile, 'utf8'),
    JSON.stringify({ 'feat-a:postgres': base, 'feat-a:api': base + 1, 'feat-b:web': base + 2, 'feat-b:api': base + 3 }, null, 2),
  );
  assert.deepEqual(reg.getWorktreePorts('feat-a'), { postgres: base, api: base + 1 });
  assert.deepEqual(reg.getWorktreePorts('feat'), {});
  assert.equal(reg.release('feat-a'), undefined);
  assert.deepEqual(Object.keys(reg.load()), ['feat-b:web', 'feat-b:api']);
  await reg.releaseAtomic('feat-b');
  assert.deepEqual(reg.ports, {});

  // a port something listens on is skipped; isPortInUse sees it (no lsof)
  const server = net.createServer();
  await new Promise((r) => server.listen(base + 10, '127.0.0.1', r));
  assert.equal(await reg.isPortInUse(base + 10), true);
  assert.equal(reg.isPortInUseSync(base + 10), true);
  assert.equal(reg.allocate('busy', 'api', base + 10), base + 11);
  await new Promise((r) => server.close(r));
  assert.equal(reg.isPortInUseSync(base + 10), false);

  // syncFromWorktrees reads .env files, adds only missing keys, returns how many
  const wt = tempDir('vt-node-wt-');
  fs.writeFileSync(path.join(wt, '.env'), 'COMPOSE_PROJECT_NAME=vibe_x\nPOSTGRES_PORT=6543\nMINIO_CONSOLE_PORT=9101\n');
  const list = [{ name: 'old', path: wt }, { name: 'gone', path: path.join(wt, 'missing') }];
  assert.equal(reg.syncFromWorktrees(list), 2);
  assert.equal(reg.syncFromWorktrees(list), 0);
  assert.deepEqual(reg.getWorktreePorts('old'), { postgres: 6543, 'minio-console': 9101 });
});

test('an object made earlier sees other writers at once; release and save keep their keys', async () => {
  const root = path.join(tempDir('vt-node-root-'), 'proj');
  const server = new PortRegistry(root); // made first, as the server makes it at start
  const base = await freeBase(4);
  // another process allocates: the CLI
  const out = execFileSync(cliPath(), ['ports', 'allocate', 'cli-wt', `api=${base}`, '--root', root], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { api: base });
  assert.deepEqual(server.getWorktreePorts('cli-wt'), { api: base });
  assert.equal(server.ports['cli-wt:api'], base);
  assert.equal(server.allocate('srv', 'api', base), base + 1);
  // deleting another worktree through the server does not erase the CLI's key
  server.release('srv');
  assert.deepEqual(server.load(), { 'cli-wt:api': base });

  // save(): the map's changes only, never a write-back of a stale map
  const ports = server.ports;
  ports['hand:api'] = base + 3;
  execFileSync(cliPath(), ['ports', 'allocate', 'late', `api=${base}`, '--root', root]);
  server.save();
  assert.deepEqual(server.load(), { 'cli-wt:api': base, 'late:api': base + 1, 'hand:api': base + 3 });
  const again = server.ports;
  delete again['cli-wt:api'];
  server.save();
  assert.deepEqual(server.load(), { 'late:api': base + 1, 'hand:api': base + 3 });
});

test('allocateAtomic terminates when its base port is taken; bad input throws and writes nothing', async () => {
  const reg = new PortRegistry(path.join(tempDir('vt-node-root-'), 'term'));
  const base = await freeBase(3);
  assert.deepEqual(await reg.allocateAtomic('a', { api: base }), { api: base });
  // the server's own allocateAtomic never returns here
  assert.deepEqual(await reg.allocateAtomic('b', { api: base }), { api: base + 1 });
  const before = fs.readFileSync(reg.registryFile, 'utf8');
  assert.throws(() => reg.allocate('x', 'api', 0), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => reg.allocate('x', 'api', 70000), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => reg.allocate('x:y', 'api', 3000), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => reg.allocate(3, 'api', 3000), { code: 'INVALID_ARGUMENT' });
  await assert.rejects(reg.allocateAtomic('x', { api: 'high' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => reg.syncFromWorktrees('nope'), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => new PortRegistry('/'), { code: 'INVALID_ARGUMENT' });
  assert.equal(fs.readFileSync(reg.registryFile, 'utf8'), before);
  // a corrupt registry is an error and is left as it is
  fs.writeFileSync(reg.registryFile, '{ broken');
  assert.throws(() => reg.ports, { code: 'PARSE' });
  await assert.rejects(reg.allocateAtomic('c', { api: base }), { code: 'PARSE' });
  assert.equal(fs.readFileSync(reg.registryFile, 'utf8'), '{ broken');
});

test('two projects whose last two path components match are warned, the file name is kept', () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  const a = new PortRegistry('/one/code/same');
  const b = new PortRegistry('/two/code/same');
  return new Promise((r) => setImmediate(r)).then(() => {
    process.off('warning', onWarning);
    assert.equal(a.registryFile, b.registryFile);
    assert.deepEqual(b.sharedWith, ['/one/code/same']);
    assert.ok(warnings.some((w) => w.code === 'VIBETREES_SHARED_PORT_REGISTRY' && /\/one\/code\/same/.test(w.message)), warnings.join('\n'));
  });
});

function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

test('this process, the CLI and plain Node with proper-lockfile@4 write at once: no port twice, no key lost', async () => {
  const root = path.join(tempDir('vt-node-root-'), 'multi');
  const reg = new PortRegistry(root);
  fs.writeFileSync(reg.registryFile, '{}');
  const base = await freeBase(60);
  const rounds = 8;
  const cliLoop = `for i in $(seq 0 ${rounds - 1}); do "$0" ports allocate cli-$i api=${base} postgres=${base} --root "$1" && "$0" ports allocate cli-scratch api=${base} --root "$1" >/dev/null && "$0" ports release cli-scratch --root "$1" >/dev/null || exit 1; done`;
  const ours = (async () => {
    const got = {};
    for (let i = 0; i < rounds; i++) {
      const p = await reg.allocateAtomic(`node-${i}`, { api: base, postgres: base });
      got[`node-${i}:api`] = p.api;
      got[`node-${i}:postgres`] = p.postgres;
      await reg.allocateAtomic('node-scratch', { api: base });
      await reg.releaseAtomic('node-scratch');
    }
    return got;
  })();
  const [nodeGot, cliOut, plfOut] = await Promise.all([
    ours,
    run('sh', ['-c', cliLoop, cliPath(), root]),
    run(process.execPath, [path.join(here, 'fixtures/proper-lockfile-writer.cjs'), properLockfileDir(), reg.registryFile, 'plf', String(rounds), String(base)]),
  ]);
  const handed = { ...nodeGot };
  cliOut.trim().split('\n').forEach((line, i) => {
    const p = JSON.parse(line);
    handed[`cli-${i}:api`] = p.api;
    handed[`cli-${i}:postgres`] = p.postgres;
  });
  for (const line of plfOut.trim().split('\n')) Object.assign(handed, JSON.parse(line));
  assert.equal(Object.keys(handed).length, 3 * rounds * 2);
  const file = reg.load();
  // no key lost, none changed, nothing left of the scratch worktrees
  assert.deepEqual(file, Object.fromEntries(Object.keys(file).map((k) => [k, handed[k]])));
  assert.deepEqual(Object.keys(file).sort(), Object.keys(handed).sort());
  const ports = Object.values(file);
  assert.equal(new Set(ports).size, ports.length, `a port handed out twice: ${JSON.stringify(file)}`);
  assert.ok(!fs.existsSync(`${fs.realpathSync(reg.registryFile)}.lock`), 'the lock is released');
});
