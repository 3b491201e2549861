/* example.c: a complete C program using libvibetrees.
 * Build: gcc -Wall -Wextra -I include example.c target/release/libvibetrees.a \
 *            -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o example */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vibetrees.h"

/* Print the calling thread's last error (message with its cause chain) and its code. */
static void report_error(const char *what, vt_result rc) {
    char buf[512];
    size_t needed = 0;
    vt_last_error_message(buf, sizeof buf, &needed); /* cut to fit if needed */
    fprintf(stderr, "%s failed [%s]: %s\n", what, vt_result_code(rc), buf);
}

/* A task body: called on a library worker thread with its dependencies' outputs as a JSON
 * object keyed by task name. Its own output must be JSON too. */
static int build_step(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    const char *step = userdata;
    printf("  %-8s got %s\n", step, inputs_json);
    char output[64];
    snprintf(output, sizeof output, "\"%s: ok\"", step);
    if (vt_task_set_output(ctx, output) != VT_OK) return 1; /* copied: output may be a local */
    return VT_OK; /* non-zero fails the task; vt_task_set_error() gives the message */
}

int main(void) {
    printf("libvibetrees %s\n", vt_version());

    /* A profiler shared by the optimizer: every task becomes a span. */
    vt_profiler *profiler = NULL;
    vt_result rc = vt_profiler_new(NULL, &profiler);
    if (rc != VT_OK) { report_error("vt_profiler_new", rc); return 1; }

    vt_optimizer *optimizer = NULL;
    rc = vt_optimizer_new("{\"concurrency\": 2}", profiler, &optimizer);
    if (rc != VT_OK) { report_error("vt_optimizer_new", rc); vt_profiler_free(profiler); return 1; }

    /* scan -> { lint, test } -> package */
    const char *after_scan[] = {"scan"};
    const char *after_checks[] = {"lint", "test"};
    vt_task tasks[] = {
        {"scan", NULL, 0, false, build_step, "scan"},
        {"lint", after_scan, 1, false, build_step, "lint"},
        {"test", after_scan, 1, false, build_step, "test"},
        {"package", after_checks, 2, false, build_step, "package"},
    };
    char *results = NULL;
    rc = vt_optimizer_run_with_dependencies(optimizer, tasks, 4, &results, NULL);
    if (rc == VT_OK) {
        printf("results: %s\n", results);
        vt_string_free(results); /* every char * the library returns */
    } else {
        report_error("vt_optimizer_run_with_dependencies", rc);
    }

    /* Errors are values: an unknown id is VT_NOT_FOUND, and the message names it. */
    vt_result missing = vt_profiler_end(profiler, "op-404", NULL);
    if (missing == VT_NOT_FOUND) report_error("ending op-404 (expected)", missing);

    char *metrics = NULL;
    if (vt_profiler_metrics(profiler, &metrics) == VT_OK) {
        printf("metrics: %s\n", metrics);
        vt_string_free(metrics);
    }

    vt_optimizer_free(optimizer);
    vt_profiler_free(profiler);
    return rc == VT_OK && missing == VT_NOT_FOUND ? 0 : 1;
}
