// Shared helpers of the Node tests: HOME in a temporary folder, real git repositories made with
// the git CLI, a real node_modules installed by npm, and a tree walker to compare folders.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Every temporary folder made here is removed when the test process exits.
const made = [];
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

// npm's cache stays where it was (so installs can be served offline); HOME moves to a temp dir.
const npmCache = process.env.npm_config_cache || path.join(os.homedir(), '.npm');

/** Points HOME at a new temporary folder (call before anything reads HOME). */
export function tempHome() {
  const home = tempDir('vt-node-home-');
  process.env.HOME = home;
  return home;
}

export { tempDir };

/** Runs git in `cwd`; returns stdout. */
export function git(cwd, ...args) {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function write(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

// Real packages from the npm registry (served from npm's cache when it has them): a dependency
// tree with nested deps (debug -> ms) and .bin symlinks (semver, js-yaml).
const DEPENDENCIES = { debug: '4.4.3', 'js-yaml': '5.5.0', semver: '7.8.6' };
let template = null;

/** A folder holding package.json, package-lock.json and node_modules installed by real npm. */
function npmTemplate() {
  if (template) return template;
  const dir = tempDir('vt-node-npm-');
  write(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: DEPENDENCIES }, null, 2) + '\n',
  );
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_cache: npmCache } },
  );
  template = dir;
  return dir;
}

/**
 * A project at `<tmp>/projects/app`: a git repo on `main` with sources, package.json (declaring an
 * MCP server package), package-lock.json, a local MCP server folder, and a real node_modules (not
 * committed) in the main worktree.
 */
export function makeProject() {
  const npm = npmTemplate();
  const tmp = tempDir('vt-node-proj-');
  const root = path.join(tmp, 'projects', 'app');
  for (let i = 0; i < 20; i++) write(path.join(root, `src/dir${i % 4}/file${i}.js`), `export const v${i} = ${i};\n`);
  write(path.join(root, 'README.md'), '# app\n');
  write(path.join(root, '.gitignore'), 'node_modules/\n.env\n.claude/\n.worktrees/\n');
  const pkg = JSON.parse(fs.readFileSync(path.join(npm, 'package.json'), 'utf8'));
  pkg.devDependencies = { '@modelcontextprotocol/server-postgres': '0.6.2' };
  write(path.join(root, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  fs.copyFileSync(path.join(npm, 'package-lock.json'), path.join(root, 'package-lock.json'));
  write(path.join(root, 'mcp-servers/notes/index.js'), 'console.log("notes mcp server");\n');
  fs.cpSync(path.join(npm, 'node_modules'), path.join(root, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'config', 'user.email', 't@example.invalid');
  git(root, 'config', 'user.name', 't');
  git(root, 'add', '-A');
  git(root, 'commit', '-q', '-m', 'init');
  return { tmp, root, cacheDir: path.join(tmp, 'cache'), historyPath: path.join(tmp, 'history.sqlite') };
}

/** Every entry under `dir`: [relative path, 'dir' | 'file:<content>' | 'link:<target>'], sorted. */
export function tree(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const rel = path.relative(dir, p);
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.push([rel, `link:${fs.readlinkSync(p)}`]);
      else if (st.isDirectory()) {
        out.push([rel, 'dir']);
        walk(p);
      } else out.push([rel, `file:${fs.readFileSync(p).toString('base64')}:${st.mode & 0o777}`]);
    }
  };
  walk(dir);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** The `vibetrees` CLI built by tests/node/run.sh (`cargo build -p vibetrees-core --features cli`). */
export function cliPath() {
  const target = process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target');
  return path.join(target, 'debug', 'vibetrees');
}

let plfDir = null;
/** A folder with the real npm package proper-lockfile@4 in its node_modules (installed once). */
export function properLockfileDir() {
  if (plfDir) return plfDir;
  const dir = tempDir('vt-node-plf-');
  write(path.join(dir, 'package.json'), '{"name":"plf","private":true}');
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', 'proper-lockfile@4'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_cache: npmCache },
  });
  plfDir = dir;
  return dir;
}
