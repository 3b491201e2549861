'use strict';
// PortRegistry of @vibetrees/native: the VibeTrees server's port registry object
// (scripts/port-registry.mjs) over the native core's registry. Argument types are checked here,
// so a programmer error throws synchronously with a clear message (code 'INVALID_ARGUMENT').

const native = require('./loader.js');

const { argError, describe } = require('./args.js');

function checkName(value, where, what) {
  if (typeof value !== 'string') throw argError(`${where}: ${what} must be a string, got ${describe(value)}`);
}

function checkPortNumber(value, where) {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw argError(`${where}: port must be an integer 1..65535, got ${describe(value)}`);
  }
}

/**
 * The VibeTrees server's port registry (`scripts/port-registry.mjs`) with the same constructor,
 * fields, methods and results, over `~/.vibetrees/<parent>-<child>/ports.json`, but never stale:
 * `ports`, `load()` and `getWorktreePorts()` read the file, and every change is a read-modify-write
 * under the proper-lockfile lock touching only the keys it changes. `allocateAtomic` terminates
 * when its base port is taken, and `isPortInUse` is a bind probe (microseconds), not `lsof`.
 */
class PortRegistry {
  constructor(projectRoot = process.cwd()) {
    checkName(projectRoot, 'new PortRegistry', 'projectRoot');
    const nativeRegistry = new native.NativePortRegistry(projectRoot);
    Object.defineProperties(this, {
      _native: { value: nativeRegistry },
      // the last map handed out by `ports` and a copy of it as read: `save()` writes their difference
      _snapshot: { value: null, writable: true },
      _base: { value: null, writable: true },
    });
    this.projectRoot = projectRoot;
    this.registryDir = nativeRegistry.registryDir;
    this.registryFile = nativeRegistry.registryFile;
    if (nativeRegistry.sharedWith.length > 0) {
      process.emitWarning(
        `${this.registryFile} is shared with project(s) ${nativeRegistry.sharedWith.join(', ')}: ` +
          'the server names the registry by the last two path components',
        { code: 'VIBETREES_SHARED_PORT_REGISTRY' },
      );
    }
  }

  /** Other project roots that use this registry's file (same last two path components). */
  get sharedWith() {
    return this._native.sharedWith;
  }

  /** The whole map `{ "<worktree>:<service>": port }`, read from the file now. */
  get ports() {
    const text = this._native.loadJson();
    this._snapshot = JSON.parse(text);
    this._base = JSON.parse(text);
    return this._snapshot;
  }

  /** Replaces the map `save()` writes (its difference from the file as it is now). */
  set ports(map) {
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      throw argError(`PortRegistry.ports must be an object, got ${describe(map)}`);
    }
    this._base = JSON.parse(this._native.loadJson());
    this._snapshot = map;
  }

  /** The whole map, read from the file now. */
  load() {
    return JSON.parse(this._native.loadJson());
  }

  /**
   * Writes the changes made to the last `ports` map (keys set, changed or deleted) under the lock;
   * every other key stays as the file has it.
   */
  save() {
    if (this._snapshot === null) return;
    this._native.saveChanges(JSON.stringify(this._base), JSON.stringify(this._snapshot));
    this._base = JSON.parse(JSON.stringify(this._snapshot));
  }

  /** True when something listens on TCP `port` (a bind probe, no process). */
  async isPortInUse(port) {
    checkPortNumber(port, 'isPortInUse');
    return native.isPortInUseSync(port);
  }

  /** isPortInUse, synchronous. */
  isPortInUseSync(port) {
    checkPortNumber(port, 'isPortInUseSync');
    return native.isPortInUseSync(port);
  }

  /** An existing key keeps its port; else the next port up from basePort neither registered nor listening (synchronous). */
  allocate(worktreeName, service, basePort) {
    checkName(worktreeName, 'allocate', 'worktreeName');
    checkName(service, 'allocate', 'service');
    checkPortNumber(basePort, 'allocate');
    return this._native.allocate(worktreeName, service, basePort);
  }

  /** Drops every `<worktreeName>:*` key (synchronous). */
  release(worktreeName) {
    checkName(worktreeName, 'release', 'worktreeName');
    this._native.release(worktreeName);
  }

  /** `{ service: port }` of the worktree, read from the file now. */
  getWorktreePorts(worktreeName) {
    checkName(worktreeName, 'getWorktreePorts', 'worktreeName');
    return JSON.parse(this._native.getWorktreePortsJson(worktreeName));
  }

  /** Adds the ports found in each worktree's `.env` that the registry misses; returns how many. */
  syncFromWorktrees(worktrees) {
    if (!Array.isArray(worktrees)) throw argError(`syncFromWorktrees: worktrees must be an array, got ${describe(worktrees)}`);
    return this._native.syncFromWorktrees(
      worktrees.map((w, i) => {
        if (w === null || typeof w !== 'object' || typeof w.name !== 'string' || typeof w.path !== 'string') {
          throw argError(`syncFromWorktrees: worktrees[${i}] must be { name, path } strings`);
        }
        return { name: w.name, path: w.path };
      }),
    );
  }

  /** Allocates `{ service: basePort }` under one lock (off the JS thread); resolves `{ service: port }`. */
  async allocateAtomic(worktreeName, services) {
    checkName(worktreeName, 'allocateAtomic', 'worktreeName');
    if (services === null || typeof services !== 'object' || Array.isArray(services)) {
      throw argError(`allocateAtomic: services must be an object { service: basePort }, got ${describe(services)}`);
    }
    for (const [name, base] of Object.entries(services)) checkPortNumber(base, `allocateAtomic: ${name}`);
    return JSON.parse(await this._native.allocateAtomicJson(worktreeName, JSON.stringify(services)));
  }

  /** Drops every `<worktreeName>:*` key under the lock (off the JS thread). */
  async releaseAtomic(worktreeName) {
    checkName(worktreeName, 'releaseAtomic', 'worktreeName');
    await this._native.releaseAtomic(worktreeName);
  }
}

module.exports = { PortRegistry };
