"""The quick start in Python: a profiler, an optimizer sharing it, and the task graph
scan -> { lint, test } -> package.
Run (after `pip install ./bindings-python`): python bindings-python/examples/quickstart.py
"""

import json
import threading

import vibetrees

print(f"vibetrees {vibetrees.__version__}")

# A profiler shared by the optimizer: every task becomes a span.
profiler = vibetrees.Profiler()
optimizer = vibetrees.PerformanceOptimizer(profiler, concurrency=2)
print_lock = threading.Lock()  # tasks run on worker threads, two at a time


def build_step(name, dependencies=()):
    """A task that prints its dependencies' results (keyed by task name) and returns "<name>: ok"."""

    def run(inputs):
        with print_lock:
            print(f"  {name:<8} got {json.dumps(inputs)}")
        return f"{name}: ok"  # raising fails the task

    return {"name": name, "fn": run, "dependencies": list(dependencies)}


# scan -> { lint, test } -> package
results = optimizer.run_with_dependencies([
    build_step("scan"),
    build_step("lint", ["scan"]),
    build_step("test", ["scan"]),
    build_step("package", ["lint", "test"]),
])
print(f"results: {json.dumps(results)}")

# Errors are exceptions with a stable code: an unknown id is NOT_FOUND, and the message names it.
try:
    profiler.end("op-404")
except vibetrees.NotFoundError as err:
    print(f"ending op-404 (expected) failed [{err.code}]: {err}")

print(f"metrics: {json.dumps(profiler.metrics())}")
