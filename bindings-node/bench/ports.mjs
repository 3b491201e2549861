// Measures PortRegistry against what the VibeTrees server does, in one run:
// isPortInUseSync (a bind probe) vs `lsof -i :PORT -sTCP:LISTEN -t` (the server's check, one
// process per call), getWorktreePorts on a registry of 100 keys (reads ports.json each time), and
// allocate for a new key (a locked read-modify-write of ports.json) and for an existing one (a read).
// Run: HOME=$(mktemp -d) node bench/ports.mjs   (uses a temporary HOME; removes it after)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PortRegistry } from '../index.js';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-bench-ports-'));
process.env.HOME = home;

function time(label, n, fn) {
  fn(); // warm
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const per = Number(process.hrtime.bigint() - t0) / n / 1000;
  console.log(`${label.padEnd(48)} ${per.toFixed(1).padStart(10)} µs/call  (n=${n})`);
  return per;
}

const server = net.createServer();
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const busy = server.address().port;
const free = busy + 1;
const reg = new PortRegistry(path.join(home, 'projects', 'bench'));
const probeFree = time('isPortInUseSync (free port)', 2000, () => reg.isPortInUseSync(free));
const probeBusy = time('isPortInUseSync (listening port)', 2000, () => reg.isPortInUseSync(busy));
const lsof = (port) => {
  try {
    return execFileSync('lsof', ['-i', `:${port}`, '-sTCP:LISTEN', '-t'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().length > 0;
  } catch {
    return false;
  }
};
if (lsof(busy) !== true || reg.isPortInUseSync(busy) !== true) console.log('note: lsof and the probe disagree on the listening port');
const lsofFree = time('lsof -i :PORT -sTCP:LISTEN -t (free port)', 20, () => lsof(free));
const lsofBusy = time('lsof -i :PORT -sTCP:LISTEN -t (listening port)', 20, () => lsof(busy));
console.log(`lsof / probe: ${(lsofFree / probeFree).toFixed(0)}x (free), ${(lsofBusy / probeBusy).toFixed(0)}x (listening)`);

for (let i = 0; i < 50; i++) reg.allocate(`wt-${i}`, 'api', 20000);
for (let i = 0; i < 50; i++) reg.allocate(`wt-${i}`, 'postgres', 30000);
time('getWorktreePorts (100 keys in ports.json)', 2000, () => reg.getWorktreePorts('wt-25'));
time('ports (whole map, 100 keys)', 2000, () => reg.ports);
time('allocate, existing key (a read: nothing to write)', 500, () => reg.allocate('wt-25', 'api', 20000));
time('allocate, new key + release (two locked writes)', 200, (i) => {
  reg.allocate(`new-${i}`, 'api', 20000);
  reg.release(`new-${i}`);
});
const t0 = process.hrtime.bigint();
for (let i = 0; i < 100; i++) await reg.allocateAtomic(`atomic-${i}`, { api: 20000, postgres: 30000 });
console.log(`${'allocateAtomic, 2 new keys (off the JS thread)'.padEnd(48)} ${(Number(process.hrtime.bigint() - t0) / 100 / 1000).toFixed(1).padStart(10)} µs/call  (n=100)`);
server.close();
fs.rmSync(home, { recursive: true, force: true });
