/* vt_optimizer_*: C tasks run in parallel and as a dependency graph, on worker threads, with
 * order (never wall-clock) assertions; error paths: cycle, unknown / duplicate names, a failing
 * task, bad output JSON, NULL and bad UTF-8 arguments, bad options. Userdata is freed right after
 * each run returns, so ASan catches any task function still running afterwards. */
#include "vt_test.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* A log of task events, shared by every task of a run. */
typedef struct {
    pthread_mutex_t lock;
    char events[64][32]; /* "start:a", "end:a" */
    int count;
    int running;
    int max_running;
    pthread_t caller;
    int on_caller_thread;
} run_log;

typedef struct {
    run_log *log;
    const char *name;
    const char *output;   /* JSON to set, or NULL */
    int fail_with;        /* returned value (0 = success) */
    const char *error;    /* vt_task_set_error message, or NULL */
    int sleep_ms;
    char inputs[256];     /* what the task received */
} task_data;

static void log_event(run_log *log, const char *what, const char *name) {
    pthread_mutex_lock(&log->lock);
    if (log->count < 64) snprintf(log->events[log->count++], 32, "%s:%s", what, name);
    pthread_mutex_unlock(&log->lock);
}

static int event_index(run_log *log, const char *what, const char *name) {
    char want[32];
    snprintf(want, sizeof want, "%s:%s", what, name);
    for (int i = 0; i < log->count; i++)
        if (strcmp(log->events[i], want) == 0) return i;
    return -1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int task_fn(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    task_data *d = userdata;
    pthread_mutex_lock(&d->log->lock);
    if (pthread_equal(pthread_self(), d->log->caller)) d->log->on_caller_thread = 1;
    d->log->running++;
    if (d->log->running > d->log->max_running) d->log->max_running = d->log->running;
    pthread_mutex_unlock(&d->log->lock);
    log_event(d->log, "start", d->name);
    snprintf(d->inputs, sizeof d->inputs, "%s", inputs_json);
    if (d->sleep_ms) sleep_ms(d->sleep_ms);
    if (d->output) vt_task_set_output(ctx, d->output);
    if (d->error) vt_task_set_error(ctx, d->error);
    pthread_mutex_lock(&d->log->lock);
    d->log->running--;
    pthread_mutex_unlock(&d->log->lock);
    log_event(d->log, "end", d->name);
    return d->fail_with;
}

static run_log *new_log(void) {
    run_log *log = calloc(1, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    log->caller = pthread_self();
    return log;
}

static void free_log(run_log *log) {
    pthread_mutex_destroy(&log->lock);
    free(log);
}

static task_data *data(run_log *log, const char *name, const char *output) {
    task_data *d = calloc(1, sizeof *d);
    d->log = log;
    d->name = name;
    d->output = output;
    return d;
}

static vt_task task(task_data *d, const char *const *deps, size_t n) {
    vt_task t = {d->name, deps, n, false, task_fn, d};
    return t;
}

int main(void) {
    vt_optimizer *opt = NULL;
    CHECK_RC(vt_optimizer_new(NULL, NULL, &opt), VT_OK, "new optimizer");

    /* --- run_parallel: results in input order, on worker threads --- */
    {
        run_log *log = new_log();
        task_data *a = data(log, "a", "1"), *b = data(log, "b", "{\"x\":[2]}"), *c = data(log, "c", NULL);
        b->sleep_ms = 20;
        vt_task tasks[] = {task(a, NULL, 0), task(b, NULL, 0), task(c, NULL, 0)};
        char *results = NULL;
        CHECK_RC(vt_optimizer_run_parallel(opt, tasks, 3, &results), VT_OK, "run_parallel");
        CHECK(results && strcmp(results, "[1,{\"x\":[2]},null]") == 0, "outputs in input order");
        CHECK(strcmp(a->inputs, "{}") == 0, "a task without dependencies gets {}");
        CHECK(!log->on_caller_thread, "task functions never run on the calling thread");
        CHECK(event_index(log, "end", "a") >= 0 && event_index(log, "end", "b") >= 0 &&
                  event_index(log, "end", "c") >= 0,
              "every task ran");
        vt_string_free(results);
        free(a); free(b); free(c); free_log(log);
    }

    /* --- run_with_dependencies: a -> {b, c} -> d; order and inputs --- */
    {
        run_log *log = new_log();
        task_data *a = data(log, "a", "\"A\""), *b = data(log, "b", "\"B\""),
                  *c = data(log, "c", "\"C\""), *d = data(log, "d", "[\"D\"]");
        b->sleep_ms = 10;
        const char *on_a[] = {"a"};
        const char *on_bc[] = {"b", "c"};
        vt_task tasks[] = {task(d, on_bc, 2), task(b, on_a, 1), task(c, on_a, 1), task(a, NULL, 0)};
        char *results = NULL, *report = NULL;
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, tasks, 4, &results, &report), VT_OK,
                 "run_with_dependencies");
        CHECK(event_index(log, "end", "a") < event_index(log, "start", "b"), "b starts after a ends");
        CHECK(event_index(log, "end", "a") < event_index(log, "start", "c"), "c starts after a ends");
        CHECK(event_index(log, "end", "b") < event_index(log, "start", "d") &&
                  event_index(log, "end", "c") < event_index(log, "start", "d"),
              "d starts after b and c end");
        CHECK(strcmp(d->inputs, "{\"b\":\"B\",\"c\":\"C\"}") == 0, "d receives b and c by name");
        CHECK(strcmp(b->inputs, "{\"a\":\"A\"}") == 0, "b receives a");
        CHECK(results && strcmp(results, "{\"d\":[\"D\"],\"b\":\"B\",\"c\":\"C\",\"a\":\"A\"}") == 0,
              "results object in input order");
        CHECK_HAS(report, "\"criticalPath\"", "report has the critical path");
        CHECK_HAS(report, "\"success\": true", "report says success");
        vt_string_free(results);
        vt_string_free(report);
        free(a); free(b); free(c); free(d); free_log(log);
    }

    /* --- a failing C task: stop policy, message, dependents skipped, userdata freed at once --- */
    {
        run_log *log = new_log();
        task_data *a = data(log, "fetch", NULL), *slow = data(log, "slow", "true"),
                  *dep = data(log, "after-fetch", "1");
        a->fail_with = 1;
        a->error = "network unreachable";
        slow->sleep_ms = 100; /* still running when fetch fails: the call must wait for it */
        const char *on_a[] = {"fetch"};
        vt_task tasks[] = {task(a, NULL, 0), task(slow, NULL, 0), task(dep, on_a, 1)};
        char *sentinel = (char *)"untouched", *results = sentinel;
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, tasks, 3, &results, NULL), VT_TASK_FAILED,
                 "a failing task fails the graph");
        CHECK_MSG_HAS("task 'fetch' failed: network unreachable", "message names the task and its error");
        CHECK(results == sentinel, "no results written on failure");
        CHECK(event_index(log, "start", "after-fetch") < 0, "its dependent never ran");
        CHECK(event_index(log, "end", "slow") >= 0, "the running sibling finished before the call returned");
        free(a); free(slow); free(dep); free_log(log); /* ASan: nothing may touch these now */
    }
    {
        run_log *log = new_log();
        task_data *a = data(log, "io-task", NULL);
        a->fail_with = VT_IO;
        vt_task tasks[] = {task(a, NULL, 0)};
        char *results = NULL;
        CHECK_RC(vt_optimizer_run_parallel(opt, tasks, 1, &results), VT_TASK_FAILED,
                 "run_parallel with a failing task");
        CHECK_MSG_HAS("returned 9 (IO)", "without a message, the returned code is named");
        CHECK_MSG_HAS("io-task", "and the task");
        free(a); free_log(log);
    }
    {
        run_log *log = new_log();
        task_data *a = data(log, "bad-json", "{not json");
        vt_task tasks[] = {task(a, NULL, 0)};
        char *results = NULL;
        CHECK_RC(vt_optimizer_run_parallel(opt, tasks, 1, &results), VT_TASK_FAILED,
                 "invalid output JSON fails the task");
        CHECK_MSG_HAS("task output", "the message says the output is not JSON");
        free(a); free_log(log);
    }

    /* --- graph errors: nothing runs --- */
    {
        run_log *log = new_log();
        task_data *a = data(log, "a", "1"), *b = data(log, "b", "2"), *c = data(log, "c", "3");
        const char *on_a[] = {"a"}, *on_b[] = {"b"}, *on_x[] = {"x"};
        vt_task cycle[] = {task(a, on_b, 1), task(b, on_a, 1), task(c, NULL, 0)};
        char *out = NULL;
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, cycle, 3, &out, NULL), VT_CYCLE, "a cycle");
        char *msg = vt_test_last_message();
        CHECK(strstr(msg, "a -> b -> a") || strstr(msg, "b -> a -> b"), "the message shows the cycle path");
        free(msg);
        CHECK_RC(vt_optimizer_plan(opt, cycle, 3, &out), VT_CYCLE, "plan finds the cycle too");
        CHECK_RC(vt_optimizer_run_graph(opt, cycle, 3, &out), VT_CYCLE, "run_graph refuses the cycle");
        vt_task unknown[] = {task(a, on_x, 1)};
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, unknown, 1, &out, NULL), VT_INVALID_GRAPH,
                 "an unknown dependency");
        CHECK_MSG_HAS("x", "the message names it");
        vt_task dup[] = {task(a, NULL, 0), task(a, NULL, 0)};
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, dup, 2, &out, NULL), VT_INVALID_GRAPH,
                 "a duplicate name");
        vt_task with_dep[] = {task(a, NULL, 0), task(b, on_a, 1)};
        CHECK_RC(vt_optimizer_run_parallel(opt, with_dep, 2, &out), VT_INVALID_ARGUMENT,
                 "run_parallel refuses dependencies");
        CHECK(log->count == 0, "no task function was called for an invalid graph");
        CHECK(out == NULL, "no output written");
        free(a); free(b); free(c); free_log(log);
    }

    /* --- NULL, bad UTF-8, empty --- */
    {
        run_log *log = new_log();
        task_data *a = data(log, "a", "1");
        char *out = NULL;
        vt_task no_fn[] = {task(a, NULL, 0), {"b", NULL, 0, false, NULL, NULL}};
        CHECK_RC(vt_optimizer_run_parallel(opt, no_fn, 2, &out), VT_NULL_ARGUMENT, "a NULL task function");
        CHECK_MSG_HAS("tasks[1].run", "the message names the task slot");
        vt_task no_name[] = {{NULL, NULL, 0, false, task_fn, a}};
        CHECK_RC(vt_optimizer_run_parallel(opt, no_name, 1, &out), VT_NULL_ARGUMENT, "a NULL name");
        const char *null_dep[] = {NULL};
        vt_task bad_dep[] = {task(a, null_dep, 1)};
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, bad_dep, 1, &out, NULL), VT_NULL_ARGUMENT,
                 "a NULL dependency name");
        vt_task no_deps_array[] = {task(a, NULL, 2)};
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, no_deps_array, 1, &out, NULL),
                 VT_NULL_ARGUMENT, "dependency_count > 0 with NULL dependencies");
        vt_task bad_name[] = {{VT_BAD_UTF8, NULL, 0, false, task_fn, a}};
        CHECK_RC(vt_optimizer_run_parallel(opt, bad_name, 1, &out), VT_INVALID_UTF8, "a bad UTF-8 name");
        CHECK_RC(vt_optimizer_run_parallel(opt, NULL, 1, &out), VT_NULL_ARGUMENT, "NULL tasks");
        CHECK_RC(vt_optimizer_run_parallel(NULL, no_fn, 1, &out), VT_NULL_ARGUMENT, "NULL optimizer");
        CHECK_RC(vt_optimizer_run_parallel(opt, no_fn, 1, NULL), VT_NULL_ARGUMENT, "NULL results_json_out");
        CHECK(log->count == 0 && out == NULL, "nothing ran, nothing written");
        CHECK_RC(vt_optimizer_run_parallel(opt, NULL, 0, &out), VT_OK, "zero tasks");
        CHECK(out && strcmp(out, "[]") == 0, "zero tasks give []");
        vt_string_free(out);
        out = NULL;
        CHECK_RC(vt_optimizer_run_with_dependencies(opt, NULL, 0, &out, NULL), VT_OK, "empty graph");
        CHECK(out && strcmp(out, "{}") == 0, "an empty graph gives {}");
        vt_string_free(out);
        CHECK_RC(vt_task_set_output(NULL, "1"), VT_NULL_ARGUMENT, "vt_task_set_output NULL ctx");
        CHECK_RC(vt_task_set_error(NULL, "x"), VT_NULL_ARGUMENT, "vt_task_set_error NULL ctx");
        free(a); free_log(log);
    }

    /* --- options: concurrency 1 never overlaps; continue policy; optional; profiler --- */
    {
        vt_optimizer *serial = NULL;
        CHECK_RC(vt_optimizer_new("{\"concurrency\": 1}", NULL, &serial), VT_OK, "concurrency 1");
        run_log *log = new_log();
        task_data *ds[4];
        vt_task tasks[4];
        const char *names[] = {"p", "q", "r", "s"};
        for (int i = 0; i < 4; i++) {
            ds[i] = data(log, names[i], "0");
            ds[i]->sleep_ms = 5;
            tasks[i] = task(ds[i], NULL, 0);
        }
        char *out = NULL;
        CHECK_RC(vt_optimizer_run_parallel(serial, tasks, 4, &out), VT_OK, "serial run");
        CHECK(log->max_running == 1, "with concurrency 1 no two tasks overlap");
        vt_string_free(out);
        for (int i = 0; i < 4; i++) free(ds[i]);
        free_log(log);
        vt_optimizer_free(serial);
    }
    {
        vt_profiler *prof = NULL;
        CHECK_RC(vt_profiler_new(NULL, &prof), VT_OK, "profiler for the optimizer");
        vt_optimizer *cont = NULL;
        CHECK_RC(vt_optimizer_new("{\"failurePolicy\": \"continue\"}", prof, &cont), VT_OK,
                 "continue policy with a profiler");
        vt_profiler_free(prof); /* the optimizer keeps the profiler alive */
        run_log *log = new_log();
        task_data *bad = data(log, "bad", NULL), *indep = data(log, "independent", "7"),
                  *after = data(log, "after-bad", "8");
        bad->fail_with = 1;
        bad->error = "boom";
        bad->sleep_ms = 0;
        indep->sleep_ms = 30;
        const char *on_bad[] = {"bad"};
        vt_task tasks[] = {task(bad, NULL, 0), task(indep, NULL, 0), task(after, on_bad, 1)};
        char *run = NULL;
        CHECK_RC(vt_optimizer_run_graph(cont, tasks, 3, &run), VT_OK, "run_graph returns the failed run");
        CHECK_HAS(run, "\"results\":{\"independent\":7}", "the independent task still ran");
        CHECK_HAS(run, "\"success\":false", "the report says it failed");
        CHECK_HAS(run, "\"failedTask\":\"bad\"", "and which task");
        CHECK_HAS(run, "\"message\":\"boom\"", "with its message");
        CHECK_HAS(run, "\"spanId\":\"op-", "tasks were recorded as profiler spans");
        CHECK(event_index(log, "start", "after-bad") < 0, "the dependent of the failure was skipped");
        vt_string_free(run);

        /* optional: its failure does not fail the graph, dependents run, it has no output */
        task_data *opt_fail = data(log, "opt", NULL), *user = data(log, "user", "9");
        opt_fail->fail_with = 1;
        const char *on_opt[] = {"opt"};
        vt_task opt_tasks[] = {task(opt_fail, NULL, 0), task(user, on_opt, 1)};
        opt_tasks[0].optional = true;
        char *results = NULL;
        CHECK_RC(vt_optimizer_run_with_dependencies(cont, opt_tasks, 2, &results, NULL), VT_OK,
                 "an optional task's failure does not fail the graph");
        CHECK(results && strcmp(results, "{\"user\":9}") == 0, "the dependent ran; the failed optional has no output");
        CHECK(strcmp(user->inputs, "{}") == 0, "the failed optional dependency is left out of the inputs");
        vt_string_free(results);

        char *plan = NULL;
        CHECK_RC(vt_optimizer_plan(cont, tasks, 3, &plan), VT_OK, "plan");
        CHECK_HAS(plan, "\"levels\"", "the plan has levels");
        vt_string_free(plan);
        free(bad); free(indep); free(after); free(opt_fail); free(user); free_log(log);
        vt_optimizer_free(cont);
    }
    {
        vt_optimizer *bad = (vt_optimizer *)1;
        CHECK_RC(vt_optimizer_new("{\"concurrency\": 0}", NULL, &bad), VT_INVALID_ARGUMENT, "concurrency 0");
        CHECK_RC(vt_optimizer_new("{\"failurePolicy\": \"sometimes\"}", NULL, &bad), VT_PARSE, "unknown policy");
        CHECK_RC(vt_optimizer_new("[", NULL, &bad), VT_PARSE, "invalid options JSON");
        CHECK_RC(vt_optimizer_new(VT_BAD_UTF8, NULL, &bad), VT_INVALID_UTF8, "bad UTF-8 options");
        CHECK_RC(vt_optimizer_new(NULL, NULL, NULL), VT_NULL_ARGUMENT, "NULL optimizer_out");
        CHECK(bad == (vt_optimizer *)1, "no handle written on failure");
    }

    vt_optimizer_free(opt);
    vt_optimizer_free(NULL);
    return vt_test_done();
}
