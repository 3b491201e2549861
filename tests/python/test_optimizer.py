"""vibetrees.PerformanceOptimizer: sync tasks on worker threads, async tasks on the caller's loop,
the core's scheduling (a task starts as soon as its dependencies are done), errors, Ctrl-C.

Scheduling is asserted by ORDER and by rendezvous (barriers/events that would deadlock, and so
time out, if tasks did not overlap), never by wall-clock thresholds."""

import _thread
import asyncio
import threading
import time

import pytest

import vibetrees

WAIT = 20  # seconds a rendezvous may take before the test counts it as a deadlock


def test_run_parallel_returns_results_in_input_order_and_overlaps_sync_tasks():
    opt = vibetrees.PerformanceOptimizer()
    barrier = threading.Barrier(3, timeout=WAIT)
    threads = set()

    def task(i):
        def fn():
            threads.add(threading.get_ident())
            barrier.wait()  # all three must be running at once, or this times out
            return i * 10

        return {"name": f"t{i}", "fn": fn}

    assert opt.run_parallel([task(i) for i in range(3)]) == [0, 10, 20]
    assert threading.get_ident() not in threads
    assert len(threads) == 3


def test_run_with_dependencies_passes_results_and_starts_tasks_as_soon_as_ready():
    opt = vibetrees.PerformanceOptimizer()
    events = []
    quick_chain_done = threading.Event()

    def slow(deps):
        # Finishes only after 'after-quick' ran: a wave scheduler (waiting for the whole level
        # of 'slow' before starting the next) would deadlock here.
        assert quick_chain_done.wait(WAIT)
        events.append("slow")
        return "S"

    def quick(deps):
        events.append("quick")
        return 1

    def after_quick(deps):
        events.append("after-quick")
        quick_chain_done.set()
        return deps["quick"] + 1

    def last(deps):
        events.append("last")
        return (deps["slow"], deps["after-quick"])

    results = opt.run_with_dependencies(
        [
            {"name": "slow", "fn": slow},
            {"name": "quick", "fn": quick},
            {"name": "after-quick", "fn": after_quick, "dependencies": ["quick"]},
            {"name": "last", "fn": last, "dependencies": ["slow", "after-quick"]},
        ]
    )
    assert results == {"slow": "S", "quick": 1, "after-quick": 2, "last": ("S", 2)}
    assert events.index("after-quick") < events.index("slow") < events.index("last")


def test_each_task_gets_only_its_own_dependencies():
    opt = vibetrees.PerformanceOptimizer()
    seen = {}

    def record(name, value):
        def fn(deps):
            seen[name] = dict(deps)
            return value

        return fn

    opt.run_with_dependencies(
        [
            {"name": "a", "fn": record("a", 1)},
            {"name": "b", "fn": record("b", 2)},
            {"name": "c", "fn": record("c", 3), "dependencies": ["a"]},
        ]
    )
    assert seen == {"a": {}, "b": {}, "c": {"a": 1}}


def test_concurrency_limit_is_respected():
    opt = vibetrees.PerformanceOptimizer(concurrency=2)
    assert opt.concurrency == 2
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def fn():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return True

    assert opt.run_parallel([{"name": f"t{i}", "fn": fn} for i in range(6)]) == [True] * 6
    assert peak[0] <= 2
    with pytest.raises(vibetrees.InvalidArgumentError, match="concurrency"):
        vibetrees.PerformanceOptimizer(concurrency=0)


def test_invalid_graphs_are_refused_before_anything_runs():
    opt = vibetrees.PerformanceOptimizer()
    ran = []

    def fn(deps):
        ran.append(1)

    with pytest.raises(vibetrees.InvalidGraphError, match="ghost"):
        opt.run_with_dependencies([{"name": "a", "fn": fn, "dependencies": ["ghost"]}])
    with pytest.raises(vibetrees.InvalidGraphError, match="'a'|a"):
        opt.run_with_dependencies([{"name": "a", "fn": fn}, {"name": "a", "fn": fn}])
    with pytest.raises(vibetrees.CycleError) as info:
        opt.run_with_dependencies(
            [
                {"name": "a", "fn": fn, "dependencies": ["b"]},
                {"name": "b", "fn": fn, "dependencies": ["a"]},
                {"name": "c", "fn": fn},
            ]
        )
    assert info.value.code == "CYCLE"
    assert "a -> b -> a" in str(info.value) or "b -> a -> b" in str(info.value)
    assert info.value.cycle in str(info.value)
    assert ran == []


def test_bad_task_specs_raise_invalid_argument_naming_the_task():
    opt = vibetrees.PerformanceOptimizer()
    with pytest.raises(vibetrees.InvalidArgumentError, match="#0"):
        opt.run_parallel([lambda: 1])
    with pytest.raises(vibetrees.InvalidArgumentError, match="has no 'name'"):
        opt.run_parallel([{"fn": lambda: 1}])
    with pytest.raises(vibetrees.InvalidArgumentError, match="'x'.*callable"):
        opt.run_parallel([{"name": "x", "fn": 42}])
    with pytest.raises(vibetrees.InvalidArgumentError, match="'x'.*not a string"):
        opt.run_with_dependencies([{"name": "x", "fn": lambda d: 1, "dependencies": "abc"}])
    with pytest.raises(vibetrees.InvalidArgumentError, match="'x' has dependencies"):
        opt.run_parallel([{"name": "x", "fn": lambda: 1, "dependencies": ["y"]}])
    with pytest.raises(vibetrees.InvalidArgumentError, match="failure policy"):
        vibetrees.PerformanceOptimizer(failure_policy="sometimes")


def test_a_failing_task_raises_task_failed_with_its_exception_as_cause():
    opt = vibetrees.PerformanceOptimizer()
    ran = []

    def bad(deps):
        raise ValueError("disk says no")

    with pytest.raises(vibetrees.TaskFailedError) as info:
        opt.run_with_dependencies(
            [
                {"name": "bad", "fn": bad},
                {"name": "after", "fn": lambda d: ran.append("after"), "dependencies": ["bad"]},
            ]
        )
    err = info.value
    assert err.task == "bad"
    assert err.code == "TASK_FAILED"
    assert "bad" in str(err) and "ValueError: disk says no" in str(err)
    assert isinstance(err.__cause__, ValueError)
    assert str(err.__cause__) == "disk says no"
    assert ran == []

    with pytest.raises(vibetrees.TaskFailedError, match="boom") as info:
        opt.run_parallel([{"name": "ok", "fn": lambda: 1}, {"name": "boom", "fn": lambda: 1 / 0}])
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_optional_tasks_and_run_graph_report():
    opt = vibetrees.PerformanceOptimizer(failure_policy="continue")

    def bad(deps):
        raise RuntimeError("optional thing broke")

    out = opt.run_graph(
        [
            {"name": "opt", "fn": bad, "optional": True},
            {"name": "uses-opt", "fn": lambda d: sorted(d), "dependencies": ["opt"]},
            {"name": "hard", "fn": lambda d: 1 / 0},
            {"name": "after-hard", "fn": lambda d: 1, "dependencies": ["hard"]},
            {"name": "independent", "fn": lambda d: "ran"},
        ]
    )
    report = out["report"]
    status = {t["name"]: t["status"] for t in report["tasks"]}
    assert status == {
        "opt": "failed",
        "uses-opt": "ok",
        "hard": "failed",
        "after-hard": "skipped",
        "independent": "ok",
    }
    assert out["results"] == {"uses-opt": [], "independent": "ran"}
    assert report["success"] is False and report["failedTask"] == "hard"
    failed = next(t for t in report["tasks"] if t["name"] == "hard")
    assert failed["error"]["code"] == "PYTHON"
    assert "ZeroDivisionError" in failed["error"]["message"]
    assert out["dot"].startswith("digraph")


def test_dry_run_plans_without_running():
    opt = vibetrees.PerformanceOptimizer()
    ran = []
    plan = opt.dry_run(
        [
            {"name": "c", "fn": lambda d: ran.append("c"), "dependencies": ["a", "b"]},
            {"name": "a", "fn": lambda d: ran.append("a")},
            {"name": "b", "fn": lambda d: ran.append("b"), "dependencies": ["a"]},
        ]
    )
    assert plan["order"] == ["a", "b", "c"]
    assert plan["levels"] == [["a"], ["b"], ["c"]]
    assert plan["longestChain"] == ["a", "b", "c"]
    assert ran == []


def test_tasks_are_recorded_in_the_profiler():
    profiler = vibetrees.Profiler()
    opt = vibetrees.PerformanceOptimizer(profiler=profiler)
    assert opt.profiler is profiler
    opt.run_with_dependencies(
        [{"name": "a", "fn": lambda d: 1}, {"name": "b", "fn": lambda d: 2, "dependencies": ["a"]}]
    )
    assert profiler.get_stats("a")["count"] == 1
    assert profiler.get_stats("b")["count"] == 1


def test_other_python_threads_run_while_the_graph_runs():
    """The caller waits detached from the interpreter: a task that needs another Python thread
    to make progress finishes (with the interpreter held, this would deadlock)."""
    opt = vibetrees.PerformanceOptimizer()
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:

        def wait_for_ticks():
            deadline = time.monotonic() + WAIT
            start = len(ticks)
            while len(ticks) < start + 50 and time.monotonic() < deadline:
                time.sleep(0.001)
            return len(ticks) - start

        assert opt.run_parallel([{"name": "w", "fn": wait_for_ticks}])[0] >= 50
    finally:
        stop.set()
        t.join()


def test_async_def_is_refused_by_the_blocking_methods():
    opt = vibetrees.PerformanceOptimizer()

    async def job(deps):
        return 1

    with pytest.raises(vibetrees.InvalidArgumentError, match="'job'.*async"):
        opt.run_with_dependencies([{"name": "job", "fn": job}])


def test_async_tasks_run_on_the_callers_event_loop():
    opt = vibetrees.PerformanceOptimizer()

    async def main():
        loop = asyncio.get_running_loop()
        main_thread = threading.get_ident()
        both_started = asyncio.Event()
        started = []

        async def fetch(deps):
            assert asyncio.get_running_loop() is loop
            assert threading.get_ident() == main_thread
            started.append("fetch")
            if len(started) == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), WAIT)  # overlaps with 'other'
            return 41

        async def other(deps):
            started.append("other")
            if len(started) == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), WAIT)
            return "o"

        def sync_step(deps):  # a plain callable in the same graph: on a worker thread
            assert threading.get_ident() != main_thread
            return deps["fetch"] + 1

        async def final(deps):
            await asyncio.sleep(0)
            return (deps["sync"], deps["other"])

        return await opt.run_with_dependencies_async(
            [
                {"name": "fetch", "fn": fetch},
                {"name": "other", "fn": other},
                {"name": "sync", "fn": sync_step, "dependencies": ["fetch"]},
                {"name": "final", "fn": final, "dependencies": ["sync", "other"]},
            ]
        )

    results = asyncio.run(main())
    assert results == {"fetch": 41, "other": "o", "sync": 42, "final": (42, "o")}


def test_run_parallel_async_and_async_failures():
    opt = vibetrees.PerformanceOptimizer()

    async def ok():
        await asyncio.sleep(0)
        return "fine"

    async def bad():
        await asyncio.sleep(0)
        raise KeyError("missing-key")

    async def main():
        assert await opt.run_parallel_async([{"name": "a", "fn": ok}, {"name": "b", "fn": lambda: 2}]) == ["fine", 2]
        with pytest.raises(vibetrees.TaskFailedError) as info:
            await opt.run_parallel_async([{"name": "bad", "fn": bad}])
        assert info.value.task == "bad"
        assert isinstance(info.value.__cause__, KeyError)
        with pytest.raises(vibetrees.CycleError):
            await opt.run_with_dependencies_async(
                [{"name": "a", "fn": ok, "dependencies": ["a2"]}, {"name": "a2", "fn": ok, "dependencies": ["a"]}]
            )

    asyncio.run(main())


def test_async_methods_need_a_running_loop():
    opt = vibetrees.PerformanceOptimizer()
    with pytest.raises(RuntimeError):
        opt.run_parallel_async([{"name": "a", "fn": lambda: 1}])


def test_cancelling_the_awaiting_task_cancels_the_graph():
    opt = vibetrees.PerformanceOptimizer()
    log = []

    async def main():
        started = asyncio.Event()

        async def forever(deps):
            started.set()
            try:
                await asyncio.sleep(3600)
            finally:
                log.append("forever-cleaned-up")

        async def after(deps):
            log.append("after-ran")

        run = asyncio.ensure_future(
            opt.run_with_dependencies_async(
                [{"name": "forever", "fn": forever}, {"name": "after", "fn": after, "dependencies": ["forever"]}]
            )
        )
        await asyncio.wait_for(started.wait(), WAIT)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        for _ in range(200):  # the core drops the graph; its coroutine is cancelled on our loop
            if log:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert log == ["forever-cleaned-up"]


def test_ctrl_c_stops_a_blocking_run_and_starts_nothing_more():
    opt = vibetrees.PerformanceOptimizer()
    started = threading.Event()
    release = threading.Event()
    ran = []

    def slow(deps):
        started.set()
        release.wait(WAIT)
        return 1

    def after(deps):
        ran.append("after")

    def press_ctrl_c():
        if started.wait(WAIT):
            _thread.interrupt_main()  # what Ctrl-C does: SIGINT handled on the main thread

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            opt.run_with_dependencies(
                [{"name": "slow", "fn": slow}, {"name": "after", "fn": after, "dependencies": ["slow"]}]
            )
    finally:
        release.set()
        presser.join()
    time.sleep(0.1)
    assert ran == []
