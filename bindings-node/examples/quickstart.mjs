// The quick start in Node: a profiler, an optimizer sharing it, and the task graph
// scan -> { lint, test } -> package.
// Run (after building the package): node bindings-node/examples/quickstart.mjs
import { PerformanceOptimizer, Profiler, coreVersion } from '@vibetrees/native';

console.log(`@vibetrees/native ${coreVersion()}`);

// A profiler shared by the optimizer: every task becomes a span.
const profiler = new Profiler();
const optimizer = new PerformanceOptimizer({ profiler, concurrency: 2 });

// A task that prints its dependencies' results (keyed by task name) and returns "<name>: ok".
const buildStep = (name, dependencies = []) => ({
  name,
  dependencies,
  fn: async (inputs) => {
    console.log(`  ${name.padEnd(8)} got ${JSON.stringify(inputs)}`);
    return `${name}: ok`; // throwing fails the task
  },
});

// scan -> { lint, test } -> package
const results = await optimizer.runWithDependencies([
  buildStep('scan'),
  buildStep('lint', ['scan']),
  buildStep('test', ['scan']),
  buildStep('package', ['lint', 'test']),
]);
console.log(`results: ${JSON.stringify(Object.fromEntries(results))}`);

// Errors carry a stable code: an unknown id is NOT_FOUND, and the message names it.
try {
  profiler.end('op-404');
} catch (err) {
  console.log(`ending op-404 (expected) failed [${err.code}]: ${err.message}`);
}

console.log(`metrics: ${JSON.stringify(profiler.getMetrics())}`);
