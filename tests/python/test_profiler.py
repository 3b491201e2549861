"""vibetrees.Profiler: every method, the contract's dict shapes, errors naming the id."""

import json
import threading
import time

import pytest

import vibetrees


def test_start_end_returns_the_operation_result():
    p = vibetrees.Profiler()
    op = p.start("git-worktree-add")
    assert isinstance(op, str)
    assert p.is_running(op)
    assert p.running_count() == 1
    time.sleep(0.01)
    result = p.end(op)
    assert not p.is_running(op)
    assert result["id"] == op
    assert result["name"] == "git-worktree-add"
    assert result["failed"] is False
    assert result["children"] == []
    assert result["duration"] >= 10.0 * 0.9
    assert result["endTime"] - result["startTime"] == pytest.approx(result["duration"])
    assert p.get_result(op) == result


def test_children_nest_under_their_parent():
    p = vibetrees.Profiler()
    parent = p.start("create-worktree-total")
    first = p.start("allocate-ports", parent)
    second = p.start("mcp-discovery", parent_id=parent)
    p.end(first)
    p.end(second)
    result = p.end(parent)
    assert [c["name"] for c in result["children"]] == ["allocate-ports", "mcp-discovery"]
    assert all(c["parentId"] == parent for c in result["children"])


def test_end_failed_is_counted_as_a_failure():
    p = vibetrees.Profiler()
    op = p.start("npm-bootstrap")
    result = p.end_failed(op, "npm exited with 1")
    assert result["failed"] is True
    assert result["error"] == "npm exited with 1"
    stats = p.get_stats("npm-bootstrap")
    assert stats["count"] == 1 and stats["failures"] == 1


def test_stats_report_and_metrics_have_the_contract_shapes():
    p = vibetrees.Profiler()
    for _ in range(3):
        p.end(p.start("a"))
    p.end(p.start("create-worktree-total"))
    stats = p.get_stats("a")
    assert set(stats) == {"name", "count", "failures", "avg", "min", "max", "total", "p50", "p95", "p99"}
    assert stats["count"] == 3
    assert stats["min"] <= stats["avg"] <= stats["max"]
    assert p.get_stats("never-ran") is None

    report = p.generate_report()
    assert set(report) == {"operations", "totalDuration"}
    totals = [o["total"] for o in report["operations"]]
    assert totals == sorted(totals, reverse=True)

    metrics = p.metrics()
    assert set(metrics) == {"operations", "totalTime", "avgWorktreeCreation"}
    assert set(metrics["operations"][0]) == {"name", "count", "avg", "min", "max", "total"}
    assert isinstance(metrics["avgWorktreeCreation"], float)
    assert vibetrees.Profiler().metrics()["avgWorktreeCreation"] is None


def test_chrome_trace_is_trace_event_json():
    p = vibetrees.Profiler()
    parent = p.start("outer")
    p.end(p.start("inner", parent))
    p.end(parent)
    trace = json.loads(p.to_chrome_trace())
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e.get("name") for e in events}
    assert {"outer", "inner"} <= names


def test_errors_name_the_id():
    p = vibetrees.Profiler()
    with pytest.raises(vibetrees.NotFoundError, match="op-999"):
        p.end("op-999")
    op = p.start("x")
    p.end(op)
    with pytest.raises(vibetrees.NotFoundError, match=op):
        p.end(op)
    with pytest.raises(vibetrees.NotFoundError, match="op-77"):
        p.start("child", "op-77")
    assert p.get_result("op-12345") is None


def test_clear_forgets_results_and_stats_and_now_ms_advances():
    p = vibetrees.Profiler()
    op = p.start("a")
    p.end(op)
    t0 = p.now_ms()
    time.sleep(0.002)
    assert p.now_ms() > t0
    p.clear()
    assert p.get_stats("a") is None
    assert p.get_result(op) is None


def test_max_results_bounds_the_window():
    p = vibetrees.Profiler(max_results=2)
    ids = [p.start("a") for _ in range(3)]
    for i in ids:
        p.end(i)
    assert p.get_result(ids[0]) is None
    assert p.get_result(ids[2]) is not None
    assert p.get_stats("a")["count"] == 3
    with pytest.raises(vibetrees.InvalidArgumentError, match="max_names"):
        vibetrees.Profiler(max_names=0)


def test_span_context_manager_ends_the_operation():
    p = vibetrees.Profiler()
    with p.span("outer") as outer:
        assert p.is_running(outer.id)
        with p.span("inner", outer.id) as inner:
            pass
    assert outer.result["name"] == "outer" and outer.name == "outer"
    assert repr(outer) == f'Span(name="outer", id="{outer.id}")'
    assert repr(p).startswith("Profiler(")
    assert inner.result["parentId"] == outer.id
    assert not p.is_running(outer.id)

    with pytest.raises(ValueError):
        with p.span("broken") as broken:
            raise ValueError("bad input")
    assert broken.result["failed"] is True
    assert broken.result["error"] == "ValueError: bad input"

    span = p.span("once")
    with span:
        pass
    with pytest.raises(vibetrees.InvalidArgumentError, match="once"):
        with span:
            pass


def test_one_profiler_shared_by_threads():
    p = vibetrees.Profiler()

    def work():
        for _ in range(200):
            p.end(p.start("threaded"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.get_stats("threaded")["count"] == 800
