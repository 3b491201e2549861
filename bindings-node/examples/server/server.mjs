// A small VibeTrees-style server on @vibetrees/native, wired the way the real server wires its
// parts (docs/server.md): a `modules` object of classes, `new PortRegistry(rootDir)`,
// `new Profiler()`, a WorktreeManager whose creations go to that profiler, progress broadcast over
// WebSocket, and the server's own database steps kept as host steps after `docker-compose-up`.
//
// Routes: POST /api/worktrees { branchName, fromBranch? } (answers 202 at once; then
// `worktree:progress` events and one `worktree:created` over WebSocket), GET /api/worktrees (each
// with its ports), DELETE /api/worktrees/:name, GET /api/performance/metrics.
//
// Run: node server.mjs --root /path/to/project [--port 3335] [--host 127.0.0.1] [--runtime none]
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { WebSocketServer } from 'ws';
import * as vibetrees from '@vibetrees/native';

const run = promisify(execFile);

/** The classes the server's WorktreeManager constructs (its `modules` object), from the package. */
export const modules = {
  PortRegistry: vibetrees.PortRegistry,
  Profiler: vibetrees.Profiler,
  PerformanceOptimizer: vibetrees.PerformanceOptimizer,
  CacheManager: vibetrees.CacheManager,
};

/**
 * The server's database steps, unchanged in what they do and report: copy main's postgres data
 * into the new worktree's postgres (span `database-copy`, step `database`), then restore the
 * latest backup of main (span `database-restore`, step `database-restore`). Optional: a failure
 * is a progress message, never a failed creation. `copy` and `restore` are the server's own
 * functions (here: a report that there is nothing to copy without containers).
 */
export function databaseSteps(broadcastProgress, { copy, restore } = {}) {
  return [
    {
      name: 'database-copy',
      dependencies: ['docker-compose-up'],
      optional: true,
      fn: async (input) => {
        broadcastProgress({ name: input.name, step: 'database', message: 'Copying database from main...' });
        const done = copy ? await copy(input) : { skipped: 'no containers to copy into' };
        broadcastProgress({ name: input.name, step: 'database', message: `✓ Database ready (${JSON.stringify(done)})` });
        return done;
      },
    },
    {
      name: 'database-restore',
      dependencies: ['database-copy'],
      optional: true,
      fn: async (input) => {
        broadcastProgress({ name: input.name, step: 'database-restore', message: 'Restoring latest backup of main...' });
        const done = restore ? await restore(input) : { skipped: 'no backup of main' };
        broadcastProgress({ name: input.name, step: 'database-restore', message: '✓ Backup restored' });
        return done;
      },
    },
  ];
}

/** `git worktree list --porcelain` as the server reads it: `[{ name, path, branch }]` (`main` for the root). */
async function gitWorktrees(rootDir) {
  const { stdout } = await run('git', ['worktree', 'list', '--porcelain'], { cwd: rootDir });
  const out = [];
  let cur = null;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('worktree ')) {
      cur = { path: line.slice(9), branch: null };
      cur.name = out.length === 0 ? 'main' : path.basename(cur.path);
      out.push(cur);
    } else if (line.startsWith('branch ') && cur) {
      cur.branch = line.slice(7).replace(/^refs\/heads\//, '');
    }
  }
  return out;
}

/**
 * Starts the server. `options`: `rootDir` (required), `port` (0: any free one), `host`
 * (default 127.0.0.1), and any WorktreeManager setting (`runtime`, `cacheDir`, `historyPath`, ...).
 * Resolves `{ url, port, manager, registry, close() }`.
 */
export async function startServer({ rootDir, port = 0, host = '127.0.0.1', database, ...settings }) {
  const app = express();
  app.use(express.json());
  const server = http.createServer(app);
  const wss = new WebSocketServer({ server, path: '/ws' });

  const broadcast = (type, data) => {
    const text = JSON.stringify({ type, data });
    for (const client of wss.clients) if (client.readyState === 1) client.send(text);
  };
  const onProgress = (event) => broadcast('worktree:progress', event);

  // What the server's WorktreeManager constructor does with its modules.
  const profiler = new modules.Profiler();
  const registry = new modules.PortRegistry(rootDir);
  const manager = new vibetrees.WorktreeManager({
    rootDir,
    ...settings,
    profiler,
    onProgress,
    hostSteps: databaseSteps(onProgress, database),
  });

  app.post('/api/worktrees', (req, res) => {
    const { branchName, fromBranch = 'main' } = req.body ?? {};
    if (typeof branchName !== 'string' || branchName === '') {
      res.status(400).json({ success: false, error: 'branchName must be a non-empty string' });
      return;
    }
    // Answer at once; the creation reports over WebSocket.
    res.status(202).json({ accepted: true, branchName });
    manager.createWorktreeOptimized(branchName, fromBranch).then(
      (result) => broadcast(result.success ? 'worktree:created' : 'worktree:error', result),
      (error) => broadcast('worktree:error', { success: false, error: error.message }),
    );
  });

  app.get('/api/worktrees', async (req, res) => {
    try {
      const worktrees = await gitWorktrees(manager.rootDir);
      res.json(worktrees.map((w) => ({ ...w, ports: registry.getWorktreePorts(w.name) })));
    } catch (error) {
      res.status(500).json({ success: false, error: error.message });
    }
  });

  app.delete('/api/worktrees/:name', async (req, res) => {
    try {
      // stops its containers, releases its ports (only its keys), removes it
      const removed = await manager.removeWorktree(req.params.name);
      broadcast('worktree:deleted', { name: req.params.name });
      res.json({ success: true, ...removed });
    } catch (error) {
      res.status(error.code === 'NOT_FOUND' ? 404 : 500).json({ success: false, error: error.message, code: error.code });
    }
  });

  app.get('/api/performance/metrics', (req, res) => {
    // as the server builds it: from manager.profiler.generateReport()
    const report = manager.profiler.generateReport();
    const operations = report.operations.map(({ name, count, avg, min, max, total }) => ({ name, count, avg, min, max, total }));
    const total = operations.find((o) => o.name === 'create-worktree-total');
    res.json({ operations, totalTime: report.totalDuration, avgWorktreeCreation: total ? total.avg : null });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    manager,
    registry,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise((r) => wss.close(r));
      await new Promise((r) => server.close(r));
      await manager.waitBackground();
    },
  };
}

// `node server.mjs --root DIR [--port N] [--host H] [--runtime R]`
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const started = await startServer({
    rootDir: path.resolve(arg('root', process.cwd())),
    port: Number(arg('port', '3335')),
    host: arg('host', '127.0.0.1'),
    runtime: arg('runtime', 'auto'),
  });
  console.log(`vibetrees example server on ${started.url} (WebSocket: ${started.url.replace('http', 'ws')}/ws)`);
}
