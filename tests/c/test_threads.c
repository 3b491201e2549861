/* Handles shared by threads: 8 threads start and end operations on one profiler at once, and 4
 * threads run task graphs on one optimizer at once; every result and count must add up, with no
 * race (ASan/UBSan watch the library's memory; TSan is not used). Each thread checks its own last
 * error stays its own. */
#include "vt_test.h"

#include <pthread.h>

#define PROFILER_THREADS 8
#define OPS_PER_THREAD 200
#define GRAPH_THREADS 4
#define GRAPHS_PER_THREAD 10

static vt_profiler *shared_profiler;
static vt_optimizer *shared_optimizer;

static void *profile_worker(void *arg) {
    long failures = 0;
    int me = (int)(long)arg;
    char name[32];
    snprintf(name, sizeof name, "worker-%d", me);
    for (int i = 0; i < OPS_PER_THREAD; i++) {
        char *parent = NULL, *child = NULL;
        if (vt_profiler_start(shared_profiler, "shared-op", NULL, &parent) != VT_OK) failures++;
        if (vt_profiler_start(shared_profiler, name, parent, &child) != VT_OK) failures++;
        if (vt_profiler_end(shared_profiler, child, NULL) != VT_OK) failures++;
        if (vt_profiler_end(shared_profiler, parent, NULL) != VT_OK) failures++;
        /* A failure of this thread only. */
        if (vt_profiler_end(shared_profiler, parent, NULL) != VT_NOT_FOUND) failures++;
        char *msg = vt_test_last_message();
        if (strstr(msg, parent) == NULL) failures++; /* never another thread's id */
        free(msg);
        vt_string_free(parent);
        vt_string_free(child);
    }
    return (void *)failures;
}

static int add_inputs(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    (void)inputs_json;
    const char *out = userdata;
    return vt_task_set_output(ctx, out) == VT_OK ? 0 : 1;
}

static void *graph_worker(void *arg) {
    long failures = 0;
    int me = (int)(long)arg;
    for (int g = 0; g < GRAPHS_PER_THREAD; g++) {
        char a_out[32], b_out[32];
        snprintf(a_out, sizeof a_out, "%d", me * 1000 + g);
        snprintf(b_out, sizeof b_out, "\"t%d-%d\"", me, g);
        const char *on_a[] = {"a"};
        vt_task tasks[] = {
            {"a", NULL, 0, false, add_inputs, a_out},
            {"b", on_a, 1, false, add_inputs, b_out},
        };
        char *results = NULL, expected[128];
        snprintf(expected, sizeof expected, "{\"a\":%s,\"b\":%s}", a_out, b_out);
        if (vt_optimizer_run_with_dependencies(shared_optimizer, tasks, 2, &results, NULL) != VT_OK ||
            strcmp(results, expected) != 0)
            failures++;
        vt_string_free(results);
    }
    return (void *)failures;
}

int main(void) {
    CHECK_RC(vt_profiler_new(NULL, &shared_profiler), VT_OK, "shared profiler");
    pthread_t threads[PROFILER_THREADS];
    for (long i = 0; i < PROFILER_THREADS; i++) pthread_create(&threads[i], NULL, profile_worker, (void *)i);
    long failures = 0;
    for (int i = 0; i < PROFILER_THREADS; i++) {
        void *r;
        pthread_join(threads[i], &r);
        failures += (long)r;
    }
    CHECK(failures == 0, "every profiler call on 8 threads behaved, each thread saw only its own errors");
    char *stats = NULL, expected[64];
    CHECK_RC(vt_profiler_stats(shared_profiler, "shared-op", &stats), VT_OK, "stats of the shared name");
    snprintf(expected, sizeof expected, "\"count\":%d", PROFILER_THREADS * OPS_PER_THREAD);
    CHECK_HAS(stats, expected, "every operation of every thread was counted once");
    vt_string_free(stats);
    stats = NULL;
    CHECK_RC(vt_profiler_stats(shared_profiler, "worker-3", &stats), VT_OK, "stats of one thread's name");
    snprintf(expected, sizeof expected, "\"count\":%d", OPS_PER_THREAD);
    CHECK_HAS(stats, expected, "its children were counted");
    vt_string_free(stats);

    CHECK_RC(vt_optimizer_new("{\"concurrency\": 3}", shared_profiler, &shared_optimizer), VT_OK, "shared optimizer");
    pthread_t gthreads[GRAPH_THREADS];
    for (long i = 0; i < GRAPH_THREADS; i++) pthread_create(&gthreads[i], NULL, graph_worker, (void *)i);
    failures = 0;
    for (int i = 0; i < GRAPH_THREADS; i++) {
        void *r;
        pthread_join(gthreads[i], &r);
        failures += (long)r;
    }
    CHECK(failures == 0, "4 threads ran 40 graphs on one optimizer, each got its own results");
    stats = NULL;
    CHECK_RC(vt_profiler_stats(shared_profiler, "b", &stats), VT_OK, "task spans of all graphs");
    snprintf(expected, sizeof expected, "\"count\":%d", GRAPH_THREADS * GRAPHS_PER_THREAD);
    CHECK_HAS(stats, expected, "every task ran once per graph");
    vt_string_free(stats);

    vt_optimizer_free(shared_optimizer);
    vt_profiler_free(shared_profiler);
    return vt_test_done();
}
