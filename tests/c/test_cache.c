/* vt_cache_*: populate a real node_modules, check validity, restore it into another project
 * with the same lockfile (with progress), stats, verify, prune, key, docker env; error paths:
 * NULL, bad UTF-8, a missing project, invalid options JSON, an unknown method. */
#include "vt_test.h"

#include <pthread.h>

static const char *PACKAGE_JSON =
    "{\n  \"name\": \"demo\",\n  \"version\": \"1.0.0\",\n"
    "  \"dependencies\": { \"left-pad\": \"1.3.0\" }\n}\n";
static const char *LOCK_JSON =
    "{\n  \"name\": \"demo\",\n  \"version\": \"1.0.0\",\n  \"lockfileVersion\": 3,\n"
    "  \"packages\": {\n    \"\": { \"dependencies\": { \"left-pad\": \"1.3.0\" } },\n"
    "    \"node_modules/left-pad\": { \"version\": \"1.3.0\" }\n  }\n}\n";

typedef struct {
    pthread_mutex_t lock;
    int calls;
    unsigned long long last_done, last_total;
} progress_log;

static void on_progress(void *userdata, uint64_t done, uint64_t total) {
    progress_log *p = userdata;
    pthread_mutex_lock(&p->lock);
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    pthread_mutex_unlock(&p->lock);
}

static void make_project(const char *dir) {
    vt_test_write(dir, "package.json", PACKAGE_JSON);
    vt_test_write(dir, "package-lock.json", LOCK_JSON);
}

int main(void) {
    char root[1024], project_a[1200], project_b[1200], cache_dir[1200], nm_a[1300], nm_b[1300];
    CHECK(vt_test_mkdtemp(root, sizeof root, "cache") == 0, "temp folder");
    snprintf(project_a, sizeof project_a, "%s/a", root);
    snprintf(project_b, sizeof project_b, "%s/b", root);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", root);
    snprintf(nm_a, sizeof nm_a, "%s/node_modules", project_a);
    snprintf(nm_b, sizeof nm_b, "%s/node_modules", project_b);
    make_project(project_a);
    make_project(project_b);
    vt_test_write(project_a, "node_modules/left-pad/package.json",
                  "{\"name\":\"left-pad\",\"version\":\"1.3.0\",\"main\":\"index.js\"}\n");
    vt_test_write(project_a, "node_modules/left-pad/index.js",
                  "module.exports = (s, n) => String(s).padStart(n);\n");
    vt_test_write(project_a, "node_modules/.package-lock.json", LOCK_JSON);
    CHECK(vt_test_sh(project_a, "mkdir -p node_modules/.bin && ln -s ../left-pad/index.js node_modules/.bin/left-pad") == 0,
          "a symlink in node_modules/.bin");

    char options[2048];
    snprintf(options, sizeof options, "{\"cacheDir\": \"%s\", \"method\": \"auto\"}", cache_dir);
    vt_cache *cache = NULL;
    CHECK_RC(vt_cache_new(options, NULL, &cache), VT_OK, "open the cache");

    bool valid = true;
    CHECK_RC(vt_cache_is_valid(cache, project_b, &valid), VT_OK, "is_valid before populate");
    CHECK(!valid, "nothing cached yet");

    char *report = NULL;
    CHECK_RC(vt_cache_populate(cache, nm_a, &report), VT_OK, "populate from project a");
    CHECK_HAS(report, "\"outcome\":\"created\"", "a new entry was created");
    CHECK_HAS(report, "\"files\":", "the report counts files");
    vt_string_free(report);

    char *key_a = NULL, *key_b = NULL;
    CHECK_RC(vt_cache_key(project_a, &key_a), VT_OK, "key of a");
    CHECK_RC(vt_cache_key(project_b, &key_b), VT_OK, "key of b");
    CHECK(key_a && strlen(key_a) == 64, "a key is 64 hex digits");
    CHECK(key_a && key_b && strcmp(key_a, key_b) == 0, "same lockfile, same key");

    CHECK_RC(vt_cache_is_valid(cache, project_b, &valid), VT_OK, "is_valid after populate");
    CHECK(valid, "project b is now served by the cache");

    /* Restore into b, with progress. */
    progress_log progress = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    char *outcome = NULL;
    CHECK_RC(vt_cache_restore(cache, nm_b, on_progress, &progress, &outcome), VT_OK, "restore into b");
    CHECK_HAS(outcome, "\"restored\":true", "restored");
    CHECK(progress.calls >= 1, "progress was reported");
    CHECK(progress.last_done == progress.last_total && progress.last_total > 0,
          "the last progress call says done == total");
    char *index_js = vt_test_read(project_b, "node_modules/left-pad/index.js");
    CHECK(index_js && strstr(index_js, "padStart"), "b has left-pad's index.js with its content");
    free(index_js);
    CHECK(vt_test_exists(project_b, "node_modules/.bin/left-pad"), "b has the .bin symlink");
    vt_string_free(outcome);

    /* An existing node_modules is replaced only when told; what is not node_modules never. */
    outcome = NULL;
    CHECK_RC(vt_cache_restore(cache, nm_b, NULL, NULL, &outcome), VT_ALREADY_EXISTS, "b exists: refused");
    CHECK_RC(vt_cache_restore_with(cache, nm_b, "{\"replace\":true}", NULL, NULL, &outcome), VT_OK,
             "b replaced when told");
    CHECK_HAS(outcome, "\"restored\":true", "restored again");
    vt_string_free(outcome);
    outcome = NULL;
    CHECK_RC(vt_cache_restore_with(cache, project_b, "{\"replace\":true}", NULL, NULL, &outcome),
             VT_INVALID_ARGUMENT, "a project folder is never a restore target");
    CHECK(vt_test_exists(project_b, "package.json"), "the project is untouched");

    /* A project whose lockfile differs: a miss is a success with restored: false. */
    char project_c[1200], nm_c[1300];
    snprintf(project_c, sizeof project_c, "%s/c", root);
    snprintf(nm_c, sizeof nm_c, "%s/node_modules", project_c);
    vt_test_write(project_c, "package.json", "{\"name\":\"c\",\"dependencies\":{\"other\":\"1.0.0\"}}\n");
    outcome = NULL;
    CHECK_RC(vt_cache_restore(cache, nm_c, NULL, NULL, &outcome), VT_OK, "restore a miss");
    CHECK_HAS(outcome, "\"restored\":false", "a miss is restored: false");
    CHECK_HAS(outcome, "\"reason\":", "with the reason");
    vt_string_free(outcome);

    char *stats = NULL, *verify = NULL, *prune = NULL, *env = NULL;
    CHECK_RC(vt_cache_stats(cache, &stats), VT_OK, "stats");
    CHECK_HAS(stats, "\"entries\":1", "one entry");
    CHECK_RC(vt_cache_verify(cache, false, &verify), VT_OK, "verify");
    CHECK_HAS(verify, "\"bad\":[]", "no bad entry");
    CHECK_RC(vt_cache_docker_env(&env), VT_OK, "docker env");
    CHECK_HAS(env, "\"DOCKER_BUILDKIT\":\"1\"", "BuildKit on");
    CHECK_HAS(env, "\"COMPOSE_DOCKER_CLI_BUILD\":\"1\"", "compose via the CLI");
    CHECK_RC(vt_cache_prune(cache, 0, &prune), VT_OK, "prune to 0 bytes");
    CHECK_RC(vt_cache_is_valid(cache, project_b, &valid), VT_OK, "is_valid after prune");
    CHECK(!valid, "the entry is gone");
    vt_string_free(stats);
    vt_string_free(verify);
    vt_string_free(prune);
    vt_string_free(env);

    /* Errors */
    char *sentinel = (char *)"untouched", *out = sentinel;
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/nope/node_modules", root);
    vt_result rc = vt_cache_populate(cache, missing, &out);
    CHECK(rc == VT_NOT_FOUND || rc == VT_IO, "populate from a missing project fails");
    CHECK_MSG_HAS("nope", "the message names the path");
    CHECK_RC(vt_cache_key(missing, &out), VT_NOT_FOUND, "key of a folder without package.json");
    CHECK_RC(vt_cache_populate(NULL, nm_a, &out), VT_NULL_ARGUMENT, "NULL cache");
    CHECK_RC(vt_cache_populate(cache, NULL, &out), VT_NULL_ARGUMENT, "NULL source");
    CHECK_RC(vt_cache_populate(cache, VT_BAD_UTF8, &out), VT_INVALID_UTF8, "bad UTF-8 source");
    CHECK_RC(vt_cache_populate(cache, nm_a, NULL), VT_NULL_ARGUMENT, "NULL report out");
    CHECK_RC(vt_cache_restore(cache, NULL, NULL, NULL, &out), VT_NULL_ARGUMENT, "restore NULL target");
    CHECK_RC(vt_cache_restore(cache, nm_b, NULL, NULL, NULL), VT_NULL_ARGUMENT, "restore NULL out");
    CHECK_RC(vt_cache_restore(cache, VT_BAD_UTF8, NULL, NULL, &out), VT_INVALID_UTF8, "restore bad UTF-8");
    CHECK_RC(vt_cache_is_valid(cache, project_b, NULL), VT_NULL_ARGUMENT, "is_valid NULL out");
    CHECK_RC(vt_cache_is_valid(cache, VT_BAD_UTF8, &valid), VT_INVALID_UTF8, "is_valid bad UTF-8");
    CHECK_RC(vt_cache_stats(NULL, &out), VT_NULL_ARGUMENT, "stats NULL cache");
    CHECK_RC(vt_cache_verify(cache, false, NULL), VT_NULL_ARGUMENT, "verify NULL out");
    CHECK_RC(vt_cache_prune(cache, 0, NULL), VT_NULL_ARGUMENT, "prune NULL out");
    CHECK_RC(vt_cache_docker_env(NULL), VT_NULL_ARGUMENT, "docker env NULL out");
    CHECK_RC(vt_cache_key(NULL, &out), VT_NULL_ARGUMENT, "key NULL project");
    CHECK(out == sentinel, "no output written by failed calls");
    vt_cache *bad = (vt_cache *)1;
    CHECK_RC(vt_cache_new("{\"cacheDir\": ", NULL, &bad), VT_PARSE, "invalid options JSON");
    CHECK_RC(vt_cache_new("{\"method\": \"teleport\"}", NULL, &bad), VT_INVALID_ARGUMENT, "unknown method");
    CHECK_MSG_HAS("teleport", "the message names the method");
    CHECK_RC(vt_cache_new("{\"cachedir\": \"/tmp\"}", NULL, &bad), VT_PARSE, "unknown option key");
    CHECK_RC(vt_cache_new(NULL, NULL, NULL), VT_NULL_ARGUMENT, "NULL cache_out");
    CHECK(bad == (vt_cache *)1, "no handle written on failure");

    /* Default folder: ~/.vibetrees/cache under this test's HOME, with a profiler. */
    vt_profiler *prof = NULL;
    vt_profiler_new(NULL, &prof);
    vt_cache *home_cache = NULL;
    CHECK_RC(vt_cache_new(NULL, prof, &home_cache), VT_OK, "open the default cache with a profiler");
    CHECK(vt_test_exists(getenv("HOME"), ".vibetrees/cache"), "it lives in $HOME/.vibetrees/cache");
    report = NULL;
    CHECK_RC(vt_cache_populate(home_cache, nm_a, &report), VT_OK, "populate the default cache");
    char *metrics = NULL;
    CHECK_RC(vt_profiler_report(prof, &metrics), VT_OK, "profiler report");
    CHECK(metrics && strstr(metrics, "\"count\":1"), "cache phases were recorded in the profiler");
    vt_string_free(metrics);
    vt_string_free(report);
    vt_cache_free(home_cache);
    vt_profiler_free(prof);

    vt_string_free(key_a);
    vt_string_free(key_b);
    vt_cache_free(cache);
    vt_cache_free(NULL);
    vt_test_sh(root, "chmod -R u+w . 2>/dev/null; true");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    system(cmd);
    return vt_test_done();
}
