/* vt_profiler_*: every function, its results as JSON, and its error paths
 * (NULL arguments, bad UTF-8, unknown and ended ids, invalid options JSON). */
#include "vt_test.h"

int main(void) {
    vt_profiler *p = NULL;
    CHECK_RC(vt_profiler_new(NULL, &p), VT_OK, "new with default options");
    CHECK(p != NULL, "new wrote the handle");

    /* start / is_running / end, with a child. */
    char *root = NULL, *child = NULL;
    CHECK_RC(vt_profiler_start(p, "create-worktree-total", NULL, &root), VT_OK, "start root");
    CHECK(root != NULL && strncmp(root, "op-", 3) == 0, "root id looks like op-N");
    CHECK_RC(vt_profiler_start(p, "git-worktree-add", root, &child), VT_OK, "start child");
    bool running = false;
    CHECK_RC(vt_profiler_is_running(p, child, &running), VT_OK, "is_running child");
    CHECK(running, "child is running");
    char *child_json = NULL;
    CHECK_RC(vt_profiler_end(p, child, &child_json), VT_OK, "end child");
    CHECK_HAS(child_json, "\"name\":\"git-worktree-add\"", "child result names it");
    CHECK_HAS(child_json, "\"duration\":", "child result has a duration");
    CHECK_RC(vt_profiler_is_running(p, child, &running), VT_OK, "is_running after end");
    CHECK(!running, "child is no longer running");
    char *root_json = NULL;
    CHECK_RC(vt_profiler_end(p, root, NULL), VT_OK, "end root without asking for the result");
    CHECK_RC(vt_profiler_result(p, root, &root_json), VT_OK, "result of the ended root");
    CHECK_HAS(root_json, "\"children\":[{", "root result holds its child");
    CHECK_HAS(root_json, "\"startTime\":", "camelCase startTime");

    /* end_failed */
    char *failing = NULL, *failed_json = NULL;
    CHECK_RC(vt_profiler_start(p, "npm-bootstrap", NULL, &failing), VT_OK, "start failing op");
    CHECK_RC(vt_profiler_end_failed(p, failing, "npm exited 1", &failed_json), VT_OK,
             "end_failed");
    CHECK_HAS(failed_json, "\"failed\":true", "failed flag");
    CHECK_HAS(failed_json, "npm exited 1", "failure message kept");

    /* stats, report, metrics, trace, now_ms */
    char *stats = NULL, *report = NULL, *metrics = NULL, *trace = NULL;
    CHECK_RC(vt_profiler_stats(p, "npm-bootstrap", &stats), VT_OK, "stats");
    CHECK_HAS(stats, "\"count\":1", "stats count");
    CHECK_HAS(stats, "\"failures\":1", "stats failures");
    CHECK_HAS(stats, "\"p95\":", "stats p95");
    CHECK_RC(vt_profiler_report(p, &report), VT_OK, "report");
    CHECK_HAS(report, "\"totalDuration\":", "report totalDuration");
    CHECK_HAS(report, "create-worktree-total", "report lists the root");
    CHECK_RC(vt_profiler_metrics(p, &metrics), VT_OK, "metrics");
    CHECK_HAS(metrics, "\"avgWorktreeCreation\":", "metrics avgWorktreeCreation");
    CHECK(metrics && !strstr(metrics, "\"avgWorktreeCreation\":null"), "avg is a number");
    CHECK_RC(vt_profiler_chrome_trace(p, &trace), VT_OK, "chrome trace");
    CHECK_HAS(trace, "\"ph\":", "trace has events");
    double t1 = -1, t2 = -1;
    CHECK_RC(vt_profiler_now_ms(p, &t1), VT_OK, "now_ms");
    CHECK_RC(vt_profiler_now_ms(p, &t2), VT_OK, "now_ms again");
    CHECK(t1 >= 0 && t2 >= t1, "now_ms is monotonic");

    /* Error paths: unknown id, ended id, unknown parent, missing stats / result. */
    char *sentinel = (char *)"untouched";
    char *out = sentinel;
    CHECK_RC(vt_profiler_end(p, "op-999999", &out), VT_NOT_FOUND, "end unknown id");
    CHECK_MSG_HAS("op-999999", "the message names the unknown id");
    CHECK(out == sentinel, "out is not written on failure");
    CHECK_RC(vt_profiler_end(p, root, &out), VT_NOT_FOUND, "end an ended id");
    CHECK_MSG_HAS(root, "the message names the ended id");
    CHECK_RC(vt_profiler_end(p, "not-an-id", NULL), VT_NOT_FOUND, "end a malformed id");
    CHECK_RC(vt_profiler_start(p, "x", "op-424242", &out), VT_NOT_FOUND, "start under unknown parent");
    CHECK_MSG_HAS("op-424242", "the message names the parent");
    CHECK(out == sentinel, "no id written for a refused start");
    CHECK_RC(vt_profiler_stats(p, "never-ran", &out), VT_NOT_FOUND, "stats of an unknown name");
    CHECK_MSG_HAS("never-ran", "the message names the name");
    CHECK_RC(vt_profiler_result(p, "op-31337", &out), VT_NOT_FOUND, "result of an unknown id");
    CHECK_RC(vt_profiler_is_running(p, "op-31337", &running), VT_OK, "is_running unknown id");
    CHECK(!running, "an unknown id is not running");
    char *live = NULL;
    CHECK_RC(vt_profiler_start(p, "live", NULL, &live), VT_OK, "start a live op");
    CHECK_RC(vt_profiler_result(p, live, &out), VT_NOT_FOUND, "result of a running op");
    CHECK_MSG_HAS("still running", "the message says it is still running");
    CHECK(out == sentinel, "out untouched after all failures");

    /* NULL and bad UTF-8 */
    CHECK_RC(vt_profiler_start(NULL, "x", NULL, &out), VT_NULL_ARGUMENT, "NULL profiler");
    CHECK_MSG_HAS("profiler", "the message names the NULL argument");
    CHECK_RC(vt_profiler_start(p, NULL, NULL, &out), VT_NULL_ARGUMENT, "NULL name");
    CHECK_RC(vt_profiler_start(p, "x", NULL, NULL), VT_NULL_ARGUMENT, "NULL id_out");
    CHECK_RC(vt_profiler_start(p, VT_BAD_UTF8, NULL, &out), VT_INVALID_UTF8, "bad UTF-8 name");
    CHECK_MSG_HAS("name", "the message names the bad argument");
    CHECK_RC(vt_profiler_start(p, "x", VT_BAD_UTF8, &out), VT_INVALID_UTF8, "bad UTF-8 parent");
    CHECK_RC(vt_profiler_end(p, NULL, NULL), VT_NULL_ARGUMENT, "end NULL id");
    CHECK_RC(vt_profiler_end_failed(p, live, NULL, NULL), VT_NULL_ARGUMENT, "end_failed NULL error");
    CHECK_RC(vt_profiler_is_running(p, live, NULL), VT_NULL_ARGUMENT, "is_running NULL out");
    CHECK_RC(vt_profiler_result(p, live, NULL), VT_NULL_ARGUMENT, "result NULL out");
    CHECK_RC(vt_profiler_stats(p, NULL, &out), VT_NULL_ARGUMENT, "stats NULL name");
    CHECK_RC(vt_profiler_report(NULL, &out), VT_NULL_ARGUMENT, "report NULL profiler");
    CHECK_RC(vt_profiler_report(p, NULL), VT_NULL_ARGUMENT, "report NULL out");
    CHECK_RC(vt_profiler_metrics(p, NULL), VT_NULL_ARGUMENT, "metrics NULL out");
    CHECK_RC(vt_profiler_chrome_trace(p, NULL), VT_NULL_ARGUMENT, "trace NULL out");
    CHECK_RC(vt_profiler_now_ms(p, NULL), VT_NULL_ARGUMENT, "now_ms NULL out");
    CHECK_RC(vt_profiler_clear(NULL), VT_NULL_ARGUMENT, "clear NULL");
    CHECK(out == sentinel, "out untouched after NULL / UTF-8 failures");
    CHECK_RC(vt_profiler_is_running(p, live, &running), VT_OK, "the live op survived the bad calls");
    CHECK(running, "still running");

    /* clear */
    CHECK_RC(vt_profiler_clear(p), VT_OK, "clear");
    CHECK_RC(vt_profiler_stats(p, "npm-bootstrap", &out), VT_NOT_FOUND, "stats gone after clear");
    CHECK_RC(vt_profiler_end(p, live, NULL), VT_OK, "a running op ends after clear");

    /* Options */
    vt_profiler *q = NULL;
    CHECK_RC(vt_profiler_new("{\"maxResults\": 1, \"maxNames\": 8}", &q), VT_OK, "new with options");
    char *a = NULL, *b = NULL;
    CHECK_RC(vt_profiler_start(q, "a", NULL, &a), VT_OK, "q start a");
    CHECK_RC(vt_profiler_end(q, a, NULL), VT_OK, "q end a");
    CHECK_RC(vt_profiler_start(q, "b", NULL, &b), VT_OK, "q start b");
    CHECK_RC(vt_profiler_end(q, b, NULL), VT_OK, "q end b");
    CHECK_RC(vt_profiler_result(q, a, &out), VT_NOT_FOUND, "maxResults 1 evicted the older result");
    vt_profiler *bad = (vt_profiler *)sentinel;
    CHECK_RC(vt_profiler_new("{\"maxResults\": ", &bad), VT_PARSE, "invalid options JSON");
    CHECK_MSG_HAS("options_json", "the message names the options argument");
    CHECK_RC(vt_profiler_new("{\"maxresults\": 3}", &bad), VT_PARSE, "unknown option key");
    CHECK_MSG_HAS("maxresults", "the message names the unknown key");
    CHECK_RC(vt_profiler_new(VT_BAD_UTF8, &bad), VT_INVALID_UTF8, "bad UTF-8 options");
    CHECK_RC(vt_profiler_new(NULL, NULL), VT_NULL_ARGUMENT, "NULL profiler_out");
    CHECK(bad == (vt_profiler *)sentinel, "no handle written on failure");

    vt_string_free(a);
    vt_string_free(b);
    vt_string_free(live);
    vt_string_free(root);
    vt_string_free(child);
    vt_string_free(child_json);
    vt_string_free(root_json);
    vt_string_free(failing);
    vt_string_free(failed_json);
    vt_string_free(stats);
    vt_string_free(report);
    vt_string_free(metrics);
    vt_string_free(trace);
    vt_profiler_free(q);
    vt_profiler_free(p);
    vt_profiler_free(NULL);
    CHECK(1, "vt_profiler_free(NULL) is a no-op");
    return vt_test_done();
}
