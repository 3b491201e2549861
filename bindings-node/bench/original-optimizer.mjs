// A pure-JavaScript PerformanceOptimizer written from the description of VibeTrees' original
// `scripts/performance-optimizer.mjs`: runParallel is Promise.all; runWithDependencies sorts the
// graph and runs it level by level (every task whose dependencies are complete, then wait for
// all of them). The baseline of bench/optimizer.mjs, not part of the package.
export class OriginalOptimizer {
  async runParallel(tasks) {
    return Promise.all(tasks.map((t) => t.fn()));
  }

  async runWithDependencies(tasks) {
    const results = new Map();
    const completed = new Set();
    const byName = new Map(tasks.map((t) => [t.name, t]));
    for (const t of tasks) {
      for (const d of t.dependencies ?? []) {
        if (!byName.has(d)) throw new Error(`Unknown dependency: ${d}`);
      }
    }
    while (completed.size < tasks.length) {
      const ready = tasks.filter(
        (t) => !completed.has(t.name) && (t.dependencies ?? []).every((d) => completed.has(d)),
      );
      if (ready.length === 0) throw new Error('Circular dependency detected');
      await Promise.all(
        ready.map(async (t) => {
          const deps = {};
          for (const d of t.dependencies ?? []) deps[d] = results.get(d);
          results.set(t.name, await t.fn(deps));
          completed.add(t.name);
        }),
      );
    }
    return results;
  }
}
