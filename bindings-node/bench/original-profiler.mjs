// A pure-JavaScript Profiler written from the description of VibeTrees' original
// `scripts/profiler.mjs` (start/end with nesting, aggregated stats, reports). Like the original,
// it keeps every operation and every result for the life of the process, and computes statistics
// by scanning the results. It is the baseline of bench/profiler.mjs, not part of the package.
import { performance } from 'node:perf_hooks';

export class OriginalProfiler {
  constructor() {
    this.operations = new Map();
    this.results = new Map();
    this.counter = 0;
  }

  start(name, parentId = null) {
    const id = `${name}-${Date.now()}-${this.counter++}`;
    this.operations.set(id, {
      id,
      name,
      parentId,
      startTime: performance.now(),
      endTime: null,
      children: [],
    });
    if (parentId) {
      const parent = this.operations.get(parentId);
      if (parent) parent.children.push(id);
    }
    return id;
  }

  end(operationId) {
    const op = this.operations.get(operationId);
    if (!op) throw new Error(`Operation ${operationId} not found`);
    op.endTime = performance.now();
    const result = {
      id: op.id,
      name: op.name,
      duration: op.endTime - op.startTime,
      startTime: op.startTime,
      endTime: op.endTime,
      children: op.children.map((c) => this.results.get(c)).filter(Boolean),
    };
    this.results.set(operationId, result);
    return result;
  }

  isRunning(operationId) {
    const op = this.operations.get(operationId);
    return Boolean(op && op.endTime === null);
  }

  getResult(operationId) {
    return this.results.get(operationId) ?? null;
  }

  getStats(name) {
    let count = 0;
    let total = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const r of this.results.values()) {
      if (r.name !== name) continue;
      count++;
      total += r.duration;
      if (r.duration < min) min = r.duration;
      if (r.duration > max) max = r.duration;
    }
    if (count === 0) return null;
    return { name, count, avg: total / count, min, max, total };
  }

  generateReport() {
    const names = new Set();
    for (const r of this.results.values()) names.add(r.name);
    const operations = [...names].map((n) => this.getStats(n)).sort((a, b) => b.total - a.total);
    const totalDuration = operations.reduce((a, s) => a + s.total, 0);
    return { operations, totalDuration };
  }
}
