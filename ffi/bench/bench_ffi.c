/* Cost of crossing the C ABI: profiler start+end pairs (ids allocated, freed), and C tasks on the
 * optimizer (a wide graph and a chain). Not a test: run ffi/bench/run.sh (release build).
 * Each measurement is repeated 5 times, alternating, and the median is printed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vibetrees.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int noop_task(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    (void)userdata;
    (void)inputs_json;
    return vt_task_set_output(ctx, "1") == VT_OK ? 0 : 1;
}

#define PAIRS 100000
#define TASKS 200

static double profiler_pairs(vt_profiler *p) {
    double t0 = now_ms();
    for (int i = 0; i < PAIRS; i++) {
        char *id = NULL;
        if (vt_profiler_start(p, "bench-op", NULL, &id) != VT_OK) abort();
        if (vt_profiler_end(p, id, NULL) != VT_OK) abort();
        vt_string_free(id);
    }
    return (now_ms() - t0) * 1e6 / PAIRS; /* ns per pair */
}

static double graph(vt_optimizer *o, int chain) {
    static char names[TASKS][16];
    static const char *deps[TASKS][1];
    vt_task tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        if (i > 0) deps[i][0] = names[i - 1];
        vt_task t = {names[i], chain && i > 0 ? deps[i] : NULL, chain && i > 0 ? 1 : 0, false, noop_task, NULL};
        tasks[i] = t;
    }
    char *out = NULL;
    double t0 = now_ms();
    vt_result rc = chain ? vt_optimizer_run_with_dependencies(o, tasks, TASKS, &out, NULL)
                         : vt_optimizer_run_parallel(o, tasks, TASKS, &out);
    double us = (now_ms() - t0) * 1e3 / TASKS; /* us per task */
    if (rc != VT_OK) abort();
    vt_string_free(out);
    return us;
}

int main(int argc, char **argv) {
    int profiler_only = argc > 1 && strcmp(argv[1], "--profiler-only") == 0;
    vt_profiler *p = NULL;
    vt_optimizer *o = NULL;
    vt_profiler_new("{\"maxResults\": 1000}", &p);
    vt_optimizer_new(NULL, NULL, &o);
    double pairs[5], wide[5], chain[5];
    if (!profiler_only) graph(o, 0); /* warm the runtime's threads */
    for (int r = 0; r < 5; r++) {
        pairs[r] = profiler_pairs(p);
        wide[r] = profiler_only ? 0 : graph(o, 0);
        chain[r] = profiler_only ? 0 : graph(o, 1);
    }
    qsort(pairs, 5, sizeof(double), cmp);
    qsort(wide, 5, sizeof(double), cmp);
    qsort(chain, 5, sizeof(double), cmp);
    printf("profiler start+end through the C ABI: %.0f ns per pair (median of 5 x %d)\n", pairs[2], PAIRS);
    printf("optimizer, %d independent C tasks (run_parallel): %.1f us per task (median of 5)\n", TASKS, wide[2]);
    printf("optimizer, chain of %d C tasks (run_with_dependencies): %.1f us per task (median of 5)\n", TASKS, chain[2]);
    vt_optimizer_free(o);
    vt_profiler_free(p);
    return 0;
}
