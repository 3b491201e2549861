// Types of @vibetrees/native (the public API in index.js; the native classes come from the
// generated binding.d.ts).
import type { OperationResult, OperationStats, Report, Metrics, ProfilerOptions } from './binding';

export type {
  OperationResult,
  OperationStats,
  Report,
  Metrics,
  MetricsOperation,
  ProfilerOptions,
} from './binding';

/** Every `err.code` of this package (the core's stable error codes). */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'CYCLE'
  | 'INVALID_GRAPH'
  | 'TASK_FAILED'
  | 'CANCELLED'
  | 'TIMEOUT'
  | 'IO'
  | 'GIT'
  | 'PROCESS'
  | 'CACHE'
  | 'LOCK'
  | 'PARSE'
  | 'INTERNAL'
  | 'WORKTREE_LOCKED'
  | 'WORKTREE_DIRTY'
  | 'UNSAFE_PATH';

/** A rejected promise or thrown error of this package. */
export interface VibetreesError extends Error {
  code: ErrorCode;
}

// ---------------------------------------------------------------------------------------------
// Profiler

export declare class Profiler {
  constructor(options?: ProfilerOptions);
  /** Starts an operation (nested under `parentId` when given); returns its id, e.g. `op-17`. */
  start(name: string, parentId?: string | null): string;
  /** Ends the operation and returns its result; an unknown or ended id throws (code NOT_FOUND). */
  end(id: string): OperationResult;
  /** Ends the operation as failed. */
  endFailed(id: string, error: unknown): OperationResult;
  isRunning(id: string): boolean;
  /** The result of an ended operation still in the window of kept results, or null. */
  getResult(id: string): OperationResult | null;
  getStats(name: string): OperationStats | null;
  generateReport(): Report;
  /** The `GET /api/performance/metrics` shape. */
  getMetrics(): Metrics;
  /** Trace Event Format JSON (Perfetto, chrome://tracing). */
  toChromeTrace(): string;
  /** Milliseconds since the profiler was made. */
  now(): number;
  clear(): void;
}

/** The version of the native core the addon was built from. */
export declare function coreVersion(): string;
/** Every error code (`err.code`) this package can produce. */
export declare function errorCodes(): ErrorCode[];

// ---------------------------------------------------------------------------------------------
// PerformanceOptimizer

export interface OptimizerOptions {
  /** Every task is recorded as an operation of this profiler, under its name. */
  profiler?: Profiler | null;
  /** Most tasks running at once; unset for no limit. */
  concurrency?: number | null;
  /** `'stop'` (default): nothing new starts after a failure; `'continue'`: independent tasks go on. */
  failurePolicy?: 'stop' | 'continue';
  /** A profiler operation id every task is a child of. */
  parentSpan?: string;
}

export interface RunOptions {
  /** Aborting stops the run: nothing new starts and it rejects with code CANCELLED. */
  signal?: AbortSignal;
}

/** A task of `runParallel`. */
export interface ParallelTask<R = unknown> {
  name: string;
  fn: () => R | Promise<R>;
}

/** A task of `runWithDependencies`: `fn` receives its dependencies' results keyed by name. */
export interface GraphTask<R = unknown> {
  name: string;
  fn: (deps: Record<string, any>) => R | Promise<R>;
  dependencies?: string[];
  /** An optional task's failure does not fail the run; its dependents still run without its result. */
  optional?: boolean;
}

export interface TaskOutcome {
  name: string;
  status: 'ok' | 'failed' | 'skipped' | 'cancelled';
  optional: boolean;
  dependencies: string[];
  startMs: number | null;
  endMs: number | null;
  durationMs: number | null;
  error: { message: string; code?: string } | null;
  reason: string | null;
  spanId: string | null;
}

/** What a graph run did: per-task outcomes and the critical path. */
export interface RunReport {
  success: boolean;
  cancelled: boolean;
  failedTask: string | null;
  totalMs: number;
  criticalPath: string[];
  criticalPathMs: number;
  tasks: TaskOutcome[];
}

export interface GraphPlan {
  tasks: Array<{ name: string; dependencies: string[]; optional: boolean; level: number }>;
  order: string[];
  levels: string[][];
  longestChain: string[];
}

export declare class PerformanceOptimizer {
  constructor(options?: OptimizerOptions | Profiler);
  readonly profiler: Profiler | null;
  readonly concurrency: number | null;
  /** The report of the last runWithDependencies / runGraph. */
  lastRun: RunReport | null;
  /** Runs the tasks at once; results in input order; rejects with the first failing task's own error. */
  runParallel<R = unknown>(tasks: ParallelTask<R>[], options?: RunOptions): Promise<R[]>;
  /** Runs a dependency graph; resolves to a Map name -> result. Rejects with a failing task's own error,
   *  or (before anything runs) with code CYCLE / INVALID_GRAPH naming the tasks. */
  runWithDependencies(tasks: GraphTask[], options?: RunOptions): Promise<Map<string, any>>;
  /** Like runWithDependencies, but resolves even when tasks fail, with the run report. */
  runGraph(tasks: GraphTask[], options?: RunOptions): Promise<{ results: Map<string, any>; report: RunReport; failures: Array<{ name: string; error: unknown }> }>;
  /** Checks the graph and plans it without running anything. */
  dryRun(tasks: GraphTask[]): GraphPlan;
}

// ---------------------------------------------------------------------------------------------
// CacheManager

export type RestoreMethod = 'auto' | 'hardlink' | 'clone' | 'copy' | 'clone-or-copy';

export interface CacheManagerOptions {
  /** Default `~/.vibetrees/cache`. */
  cacheDir?: string;
  /** Default `'auto'`: hardlink, falling back per file to a reflink or a copy. */
  method?: RestoreMethod;
  /** Restore worker threads; default one per core, at most 4. */
  workers?: number;
}

export interface PhaseTime {
  name: string;
  ms: number;
}

export interface PopulateReport {
  key: string;
  outcome: 'created' | 'already-present';
  files: number;
  dirs: number;
  symlinks: number;
  specialSkipped: number;
  bytes: number;
  linked: number;
  cloned: number;
  copied: number;
  durationMs: number;
  phases: PhaseTime[];
}

export interface RestoreStats {
  key: string;
  target: string;
  method: RestoreMethod;
  methodUsed: string;
  linked: number;
  cloned: number;
  copied: number;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  workers: number;
  verified: boolean;
  replacedExisting: boolean;
  durationMs: number;
  phases: PhaseTime[];
}

export interface RestoreOutcome {
  restored: boolean;
  key: string | null;
  stats: RestoreStats | null;
  /** Why nothing was restored. */
  reason: string | null;
}

export interface CacheStats {
  cacheDir: string;
  entries: number;
  files: number;
  bytes: number;
  apparentBytes: number;
  hits: number;
  misses: number;
  [more: string]: unknown;
}

export interface VerifyReport {
  entriesChecked: number;
  filesChecked: number;
  bad: Array<{ key: string; problemCount: number; problems: string[]; evicted: boolean }>;
}

export interface PruneReport {
  evicted: string[];
  busy: string[];
  bytesFreed: number;
  bytesLeft: number;
  abandonedRemoved: number;
}

export declare class CacheManager {
  constructor(options?: CacheManagerOptions | string | null, profiler?: Profiler | null);
  readonly cacheDir: string;
  /** Caches the node_modules at this path under its project's key (the folder holding it). */
  cacheNodeModules(sourceNodeModulesPath: string): Promise<PopulateReport>;
  /** Restores the node_modules at this path from its project's entry; a miss resolves `{ restored: false }`. */
  restoreNodeModules(targetNodeModulesPath: string, options?: { replace?: boolean }): Promise<RestoreOutcome>;
  /** True when the cache holds an entry for the project (synchronous). */
  isCacheValid(projectPath: string): boolean;
  getDockerCacheEnv(): { DOCKER_BUILDKIT: '1'; BUILDKIT_PROGRESS: 'plain'; COMPOSE_DOCKER_CLI_BUILD: '1' } & Record<string, string>;
  stats(): Promise<CacheStats>;
  verify(evictBad?: boolean): Promise<VerifyReport>;
  prune(budgetBytes: number): Promise<PruneReport>;
  clear(): Promise<PruneReport>;
}

// ---------------------------------------------------------------------------------------------
// WorktreeManager

/** A progress event, as the server broadcasts it (`worktree:progress`). */
export interface ProgressEvent {
  /** The worktree's name. */
  name: string;
  /** `git`, `ports`, `mcp`, `install`, `bootstrap`, `containers`, `database`, `complete`, `error`,
   *  `cache`, or a host step's name. */
  step: string;
  /** A message starting with `✓` marks the step done. */
  message: string;
}

/** The built-in steps a host step can depend on. */
export type BuiltinStep =
  | 'read-inputs'
  | 'git-worktree-add'
  | 'cache-restore'
  | 'copy-ignored'
  | 'compose-services'
  | 'allocate-ports'
  | 'pull-images'
  | 'write-env'
  | 'mcp-discovery'
  | 'npm-bootstrap'
  | 'docker-compose-up';

export interface HostStepInput {
  name: string;
  path: string;
  branch: string;
  /** Results (JSON) of the steps it depends on. */
  dependencies: Record<string, any>;
}

/** The host's own step, run inside the creation graph and profile. Its result must be JSON. */
export interface HostStep {
  name: string;
  dependencies?: Array<BuiltinStep | string>;
  optional?: boolean;
  fn: (input: HostStepInput) => unknown | Promise<unknown>;
}

/**
 * The core's worktree settings (the same keys in C and Python), plus the two callbacks. Unknown
 * keys and wrong types are refused (`PARSE`, naming the key); `null` means the default.
 */
export interface WorktreeSettings {
  /** The project's root (its main git worktree). */
  rootDir: string;
  /** Default `<rootDir>/.worktrees`. */
  worktreeBase?: string | null;
  /** node_modules cache folder; default `~/.vibetrees/cache`. */
  cacheDir?: string | null;
  /** Default `docker-compose.yml`. */
  composeFile?: string | null;
  /** Default `'auto'`. */
  runtime?: 'auto' | 'docker' | 'podman' | 'none' | null;
  /** Services started before the creation resolves; the others start in the background. */
  criticalServices?: string[] | null;
  /** Push the new branch to `origin` in the background. Default false. */
  pushBranch?: boolean | null;
  /** Time limit of that push, ms. Default 60000. */
  pushTimeout?: number | null;
  /** Default true. */
  useCache?: boolean | null;
  /** Run the project's install on a cache miss. Default true. */
  install?: boolean | null;
  /** Time limit of the project's install, ms (its process group is killed, the install fails with TIMEOUT). Default 900000 (15 min). */
  /** How node_modules is restored from the cache: 'auto' (default; hardlinks: shared inodes), 'clone' (reflinks: no shared inode, where the filesystem supports it), 'clone-or-copy', 'copy', 'hardlink'. */
  cacheMethod?: 'auto' | 'hardlink' | 'clone' | 'copy' | 'clone-or-copy' | null;
  installTimeout?: number | null;
  /** Workers of the node_modules restore beside the checkout; default: chosen per creation. */
  restoreWorkers?: number | null;
  historyPath?: string | null;
  /** Default true. */
  recordHistory?: boolean | null;
  /** Extra `mcpServers` entries (e.g. the host's bridge server) for every worktree. */
  mcpServers?: Record<string, unknown> | null;
  /** `'git2'` (ours, default) or `'cli'` (`git worktree add`). */
  checkout?: 'git2' | 'cli' | null;
  /** Threads of our checkout; default one per core, at most 8. */
  checkoutThreads?: number | null;
  /** The git program for `git worktree add` and the push; default `git` on PATH. */
  gitProgram?: string | null;
  /** How long a worktree removed with changes stays in the trash (restorable), ms. Default 86400000 (24 h). */
  trashGrace?: number | null;
  /** Patterns (gitignore syntax) of ignored files to copy, beside `.worktreeinclude`. */
  include?: string[] | null;
  /** Patterns of ignored files (big build caches) copied in the background after ready. */
  includeBackground?: string[] | null;
  /** Write the copied (not cloned) ignored files by direct I/O (`O_DIRECT`, Linux): their bytes go to the disk during the copy and do not fill the page cache. Unset or null (the default): where the disk suits it, an SSD or a VM's disk on Linux; true/false force it (docs/include.md, "Direct I/O"). */
  includeDirectIo?: boolean | null;
  /** The host's hooks: always run (`post-create` before ready, `post-ready` after). */
  hooks?: HooksConfig | null;
  /** Run the repository's hooks without approval (`vibetrees hooks approve`). Default false. */
  trustProjectHooks?: boolean | null;
  /** Spare worktrees kept ready per project and `from` commit; a creation from that commit claims one. Default 1; 0 disables the pool. */
  poolSize?: number | null;
  /** Disk budget of the pool, bytes (the spares' checked-out files; node_modules are hardlinks into the cache). Default 1073741824 (1 GiB). */
  poolMaxBytes?: number | null;
  /** Most changed paths a near spare (made from an older commit of `from`) is brought up to date by at a claim or refill; past it a normal creation is faster. Default 2000 (also never more than half the tracked files). */
  poolNearMaxChanges?: number | null;
}

/** A hook: a command run through `sh -c` in the worktree, or the command with its options. */
export type HookDef =
  | string
  | {
      command: string;
      name?: string | null;
      /** Its failure does not fail the creation. */
      optional?: boolean;
      /** Steps (or `hook:<name>`) it runs after; default checkout, node_modules, .env, copied files. */
      after?: string[] | null;
      /** Default 600000 (10 minutes). */
      timeoutMs?: number | null;
    };

export interface HooksConfig {
  'post-create'?: HookDef[];
  'post-ready'?: HookDef[];
}

/** The hooks of a creation (each post-create hook's result is in `steps['hook:<name>']`). */
export interface HooksReport {
  log: string | null;
  postCreate: string[];
  postReady: string[];
  /** Repository hooks not run: not approved. */
  skipped: Array<{ name: string; source: string; command: string }>;
}

export interface WorktreeManagerOptions extends WorktreeSettings {
  onProgress?: (event: ProgressEvent) => void;
  hostSteps?: HostStep[];
  /** Record every creation into this profiler (the server's own); `manager.profiler` is then it. */
  profiler?: Profiler | null;
}

/** Options of one creation. */
export interface CreateOptions {
  /** Aborting cancels the creation: it is undone and resolves `{ success: false, code: 'CANCELLED' }`. */
  signal?: AbortSignal;
}

export interface StepTiming {
  name: string;
  status: 'ok' | 'failed' | 'skipped' | 'cancelled';
  startMs: number | null;
  durationMs: number | null;
  error: string | null;
}

export interface CreatedWorktree {
  name: string;
  path: string;
  branch: string;
  ports: Record<string, number>;
  dockerStatus: unknown[];
  from: string;
  createdBranch: boolean;
  totalMs: number;
  timings: StepTiming[];
  criticalPath: string[];
  cache: {
    outcome: 'hit' | 'near' | 'miss' | 'none' | 'disabled';
    key: string | null;
    method: string | null;
    files: number | null;
    installCommand: string | null;
    installError: string | null;
    populating: boolean;
  };
  steps: Record<string, unknown>;
  background: string[];
  hooks: HooksReport;
  creationId: number | null;
  /** Whether the worktree is a claimed pool spare (`poolSize`); `spareAgeMs` only when it is, `nearChanges` (paths updated) when the spare was of an older commit. */
  pool: { claimed: boolean; spareAgeMs?: number; nearChanges?: number };
}

export type CreateWorktreeResult =
  | { success: true; worktree: CreatedWorktree }
  | { success: true; name: string; path: string; branch: string; existed: true; message: 'Worktree already exists' }
  | { success: false; error: string; code: ErrorCode };

export interface WorktreeInfo {
  name: string;
  path: string;
  branch: string | null;
  ports: Record<string, number>;
  isMain: boolean;
  missing: boolean;
  halfMade: boolean;
}

export interface RemoveOutcome {
  success: true;
  name: string;
  releasedPorts: Record<string, number>;
  trashedTo: string | null;
  containers: string;
  /** The trash entry keeping it, when it held changes (`force`). */
  kept: TrashEntry | null;
}

export interface RemoveOptions {
  /** Remove it even with changes: it is kept in the trash for `trashGrace`. */
  force?: boolean;
  /** Remove it even if locked with `git worktree lock`. */
  forceLocked?: boolean;
}

export interface TrashEntry {
  name: string;
  originalPath: string;
  registration: string | null;
  reason: string;
  trashedAtMs: number;
  expiresAtMs: number;
  location: string;
}

/** One spare worktree of the pool (`poolStatus`). */
export interface SpareInfo {
  /** Its folder (under `<worktreeBase>/.pool/`). */
  path: string;
  /** The commit it holds. */
  commit: string;
  /** The ref it was made from (`refs/heads/main`). */
  from: string;
  /** Its node_modules cache key, if the project has one. */
  cacheKey: string | null;
  /** Whether node_modules is in it. */
  nodeModules: boolean;
  /** Bytes of its checked-out files. */
  bytes: number;
  /** Files checked out. */
  files: number;
  /** Its age, ms. */
  ageMs: number;
}

/** The pool of spare worktrees of a project (`poolStatus`). */
export interface PoolStatus {
  /** The pool's folder, `<worktreeBase>/.pool`. */
  dir: string;
  /** `poolSize`. */
  size: number;
  /** `poolMaxBytes`. */
  maxBytes: number;
  /** Bytes the spares hold (their checked-out files). */
  bytes: number;
  /** The spares, oldest first. */
  spares: SpareInfo[];
}

/** What a `fillPool` did. */
export interface PoolFillReport {
  /** The ref filled for (`refs/heads/main`), if one resolved. */
  from: string | null;
  /** Spares made. */
  made: number;
  /** Spares and debris removed. */
  discarded: number;
  /** Spares of an older commit brought up to date (near spares). */
  updated: number;
  /** Why it stopped before `poolSize` spares, if it did (the budget, the pool is off, ...). */
  stopped: string | null;
}

export interface CreationRecord {
  id: number;
  name: string;
  repo: string;
  startedAtMs: number;
  readyMs: number;
  cacheOutcome: 'hit' | 'near' | 'miss' | 'none' | string;
  criticalPath: string[];
  steps: Array<{ step: string; durationMs: number; critical: boolean }>;
}

export interface StepSummary {
  step: string;
  count: number;
  p50: number;
  p95: number;
  criticalCount: number;
}

export interface Advice {
  /** The step most often on the critical path, and how often. */
  mostCritical: [string, number] | null;
  /** Steps whose p95 got worse by more than 20%: [step, older p95, newer p95]. */
  regressed: Array<[string, number, number]>;
}

/** The creations WorktreeManager recorded (default `~/.vibetrees/history.sqlite`). */
export declare class History {
  constructor(options?: { path?: string });
  readonly path: string;
  /** The last `n` (default 20) creations, newest first. */
  recent(n?: number): Promise<CreationRecord[]>;
  /** p50/p95 per step over the last `n` (default 50) creations, slowest p95 first. */
  stepSummaries(n?: number): Promise<StepSummary[]>;
  advice(n?: number): Promise<Advice>;
  /** The Chrome trace (JSON) of a creation, by row id or worktree name; null if none. */
  trace(which: string): Promise<string | null>;
}

export declare class WorktreeManager {
  constructor(options: WorktreeManagerOptions);
  static readonly stepNames: BuiltinStep[];
  readonly rootDir: string;
  readonly worktreeBase: string;
  readonly profiler: Profiler;
  readonly optimizer: PerformanceOptimizer;
  readonly cacheManager: CacheManager;
  readonly history: History;
  /** Never rejects for a failed creation: resolves `{ success: false, error, code }`. */
  createWorktreeOptimized(branchName: string, fromBranch?: string, options?: CreateOptions): Promise<CreateWorktreeResult>;
  /** Same as createWorktreeOptimized. */
  createWorktree(branchName: string, fromBranch?: string, options?: CreateOptions): Promise<CreateWorktreeResult>;
  /** Rejects `WORKTREE_LOCKED`, `WORKTREE_DIRTY`, `LOCK` (being created), `NOT_FOUND` (not ours). */
  removeWorktree(name: string, options?: RemoveOptions): Promise<RemoveOutcome>;
  trashList(): Promise<TrashEntry[]>;
  trashRestore(name: string): Promise<TrashEntry>;
  listWorktrees(): Promise<WorktreeInfo[]>;
  /** Makes spares for `from` (default: the main worktree's branch) up to `poolSize`; rejects `NOT_FOUND` for an unknown ref. */
  fillPool(from?: string | null): Promise<PoolFillReport>;
  /** Deletes every spare nobody is claiming; resolves to how many were removed. */
  clearPool(): Promise<number>;
  poolStatus(): Promise<PoolStatus>;
  warm(): Promise<string[]>;
  waitBackground(): Promise<void>;
  backgroundJobs(): string[];
  /** `{ operations, totalTime, avgWorktreeCreation }` (synchronous). */
  getPerformanceMetrics(): Metrics;
}

/**
 * The VibeTrees server's port registry (`~/.vibetrees/<parent>-<child>/ports.json`), never stale:
 * `ports`, `load()` and `getWorktreePorts()` read the file; every change is a locked
 * read-modify-write of the keys it changes (proper-lockfile's lock).
 */
export declare class PortRegistry {
  constructor(projectRoot?: string);
  readonly projectRoot: string;
  readonly registryDir: string;
  readonly registryFile: string;
  /** Other project roots whose last two path components name the same registry. */
  readonly sharedWith: string[];
  /** The whole map `{ "<worktree>:<service>": port }`, read from the file at each access. */
  ports: Record<string, number>;
  load(): Record<string, number>;
  /** Writes what changed in the last `ports` map (only those keys), under the lock. */
  save(): void;
  isPortInUse(port: number): Promise<boolean>;
  isPortInUseSync(port: number): boolean;
  allocate(worktreeName: string, service: string, basePort: number): number;
  release(worktreeName: string): void;
  getWorktreePorts(worktreeName: string): Record<string, number>;
  syncFromWorktrees(worktrees: Array<{ name: string; path: string }>): number;
  allocateAtomic(worktreeName: string, services: Record<string, number>): Promise<Record<string, number>>;
  releaseAtomic(worktreeName: string): Promise<void>;
}
