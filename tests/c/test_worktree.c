/* vt_worktree_manager_* and vt_create_worktree_optimized on a real temporary git repository whose
 * node_modules comes from real npm (a local tarball dependency, no network): a first creation
 * (cache miss: npm ci in the worktree, then the cache is populated in the background), a second
 * (cache hit), an existing one, list, metrics, profiler, remove; every result checked on disk and
 * with the git CLI. Error paths: bad branch names, unknown from-ref, bad options, NULL, bad UTF-8. */
#include "vt_test.h"

#include <pthread.h>

typedef struct {
    pthread_mutex_t lock;
    int events;
    int concurrent, max_concurrent;
    char steps[2048]; /* "git,ports,..." */
    int saw_error_event;
    pthread_t caller;          /* the thread that calls vt_create_worktree_optimized */
    int events_on_caller;      /* events delivered on it (the header says: never) */
    int complete_events, error_events;
} progress_log;

static void on_progress(void *userdata, const char *event_json) {
    progress_log *p = userdata;
    pthread_mutex_lock(&p->lock);
    p->concurrent++;
    if (p->concurrent > p->max_concurrent) p->max_concurrent = p->concurrent;
    p->events++;
    const char *s = strstr(event_json, "\"step\":\"");
    if (s) {
        s += 8;
        const char *e = strchr(s, '"');
        if (e && strlen(p->steps) + (size_t)(e - s) + 2 < sizeof p->steps) {
            strncat(p->steps, s, (size_t)(e - s));
            strcat(p->steps, ",");
        }
    }
    if (strstr(event_json, "\"step\":\"error\"")) p->saw_error_event = 1, p->error_events++;
    if (strstr(event_json, "\"step\":\"complete\"")) p->complete_events++;
    if (pthread_equal(pthread_self(), p->caller)) p->events_on_caller++;
    p->concurrent--;
    pthread_mutex_unlock(&p->lock);
}

/* A host step: writes NOTES.txt into the new worktree (its path comes in the inputs JSON). */
static int write_notes(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    int *calls = userdata;
    (*calls)++;
    const char *p = strstr(inputs_json, "\"path\":\"");
    if (!p || !strstr(inputs_json, "\"git-worktree-add\"")) {
        vt_task_set_error(ctx, "inputs lack the path or the git step's result");
        return 1;
    }
    p += 8;
    char path[2048];
    size_t n = (size_t)(strchr(p, '"') - p);
    snprintf(path, sizeof path, "%.*s", (int)n, p);
    if (vt_test_write(path, "NOTES.txt", "made by a C host step\n") != 0) {
        vt_task_set_error(ctx, "cannot write NOTES.txt");
        return 1;
    }
    return vt_task_set_output(ctx, "{\"wrote\":\"NOTES.txt\"}") == VT_OK ? 0 : 1;
}

static int refuse(void *userdata, const char *inputs_json, vt_task_context *ctx) {
    (void)userdata;
    (void)inputs_json;
    vt_task_set_error(ctx, "policy check refused this worktree");
    return 1;
}

int main(void) {
    setenv("NPM_CONFIG_UPDATE_NOTIFIER", "false", 1);
    setenv("NPM_CONFIG_FUND", "false", 1);
    setenv("NPM_CONFIG_AUDIT", "false", 1);
    char tmp[1024], root[1200], cache_dir[1200], history[1200];
    CHECK(vt_test_mkdtemp(tmp, sizeof tmp, "worktree") == 0, "temp folder");
    snprintf(root, sizeof root, "%s/projects/app", tmp);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmp);
    snprintf(history, sizeof history, "%s/history.sqlite", tmp);

    /* A real project: a local package packed by npm, installed by npm, committed with git. */
    vt_test_write(root, "vendor/greet/package.json",
                  "{\"name\":\"greet\",\"version\":\"1.0.0\",\"main\":\"index.js\"}\n");
    vt_test_write(root, "vendor/greet/index.js", "module.exports = (n) => 'hello ' + n;\n");
    vt_test_write(root, "package.json",
                  "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\",\n"
                  "  \"dependencies\": { \"greet\": \"file:vendor/greet-1.0.0.tgz\" }\n}\n");
    vt_test_write(root, "src/index.js", "console.log(require('greet')('world'));\n");
    vt_test_write(root, ".gitignore", "node_modules/\n.env\n.claude/\n.worktrees/\nNOTES.txt\n");
    CHECK(vt_test_sh(root, "cd vendor/greet && npm pack --pack-destination .. >/dev/null 2>&1 && cd .. && rm -rf greet") == 0,
          "npm pack made the local package tarball");
    CHECK(vt_test_sh(root, "npm install --no-audit --no-fund --offline >/dev/null 2>&1") == 0,
          "npm install made a real node_modules");
    CHECK(vt_test_exists(root, "node_modules/greet/index.js") && vt_test_exists(root, "package-lock.json"),
          "node_modules/greet and package-lock.json exist");
    CHECK(vt_test_git_repo(root) == 0, "a git repository on main");

    char options[4096];
    snprintf(options, sizeof options,
             "{\"rootDir\": \"%s\", \"cacheDir\": \"%s\", \"historyPath\": \"%s\", \"runtime\": \"none\"}",
             root, cache_dir, history);
    progress_log progress;
    memset(&progress, 0, sizeof progress);
    pthread_mutex_init(&progress.lock, NULL);
    progress.caller = pthread_self();
    int host_calls = 0;
    const char *after_git[] = {"git-worktree-add"};
    vt_task host_steps[] = {{"host-notes", after_git, 1, false, write_notes, &host_calls}};
    vt_worktree_manager *m = NULL;
    CHECK_RC(vt_worktree_manager_new(options, on_progress, &progress, host_steps, 1, &m), VT_OK, "open the project");

    /* 1. First creation: cache miss, npm ci inside the new worktree. */
    char *result = NULL;
    CHECK_RC(vt_create_worktree_optimized(m, "Feature/Greet Page", NULL, &result), VT_OK,
             "create Feature/Greet Page from main");
    CHECK_HAS(result, "\"success\":true", "success");
    CHECK_HAS(result, "\"name\":\"feature-greet-page\"", "the name is the slug");
    CHECK_HAS(result, "\"branch\":\"feature-greet-page\"", "the branch is the slug");
    CHECK_HAS(result, "\"dockerStatus\":[]", "dockerStatus is []");
    CHECK_HAS(result, "\"ports\":{", "ports are reported");
    CHECK_HAS(result, "\"outcome\":\"miss\"", "the first creation is a cache miss");
    CHECK_HAS(result, "\"host-notes\":{\"wrote\":\"NOTES.txt\"}", "the host step's output is in steps");
    vt_string_free(result);
    char wt[1400];
    snprintf(wt, sizeof wt, "%s/.worktrees/feature-greet-page", root);
    CHECK(vt_test_exists(wt, ".git"), "the worktree folder has its .git file");
    CHECK(vt_test_exists(wt, "src/index.js"), "the checkout is there");
    char *greet = vt_test_read(wt, "node_modules/greet/index.js");
    CHECK(greet && strstr(greet, "hello"), "node_modules/greet was installed by npm in the worktree");
    free(greet);
    char *env = vt_test_read(wt, ".env");
    CHECK_HAS(env, "COMPOSE_PROJECT_NAME=vibe_feature_greet_page", ".env names the compose project");
    free(env);
    char *branches = vt_test_sh_output(root, "git branch --list feature-greet-page");
    CHECK_HAS(branches, "feature-greet-page", "git has the new branch");
    free(branches);
    char *list = vt_test_sh_output(root, "git worktree list --porcelain");
    CHECK_HAS(list, "branch refs/heads/feature-greet-page", "git lists the worktree on its branch");
    free(list);
    char *status = vt_test_sh_output(wt, "git status --porcelain");
    CHECK(status && status[0] == 0, "the worktree is clean (node_modules, .env and NOTES.txt are ignored)");
    free(status);
    char *notes = vt_test_read(wt, "NOTES.txt");
    CHECK_HAS(notes, "C host step", "the C host step ran in the creation graph and wrote into the worktree");
    free(notes);
    char *run = vt_test_sh_output(wt, "node src/index.js");
    CHECK_HAS(run, "hello world", "node runs the project in the worktree with its node_modules");
    free(run);

    /* The cache is populated in the background; then a second creation is a hit. */
    CHECK_RC(vt_worktree_manager_wait_background(m), VT_OK, "wait for the background work");
    vt_cache *cache = NULL;
    char cache_opts[1400];
    snprintf(cache_opts, sizeof cache_opts, "{\"cacheDir\": \"%s\"}", cache_dir);
    CHECK_RC(vt_cache_new(cache_opts, NULL, &cache), VT_OK, "open the same cache");
    bool valid = false;
    CHECK_RC(vt_cache_is_valid(cache, root, &valid), VT_OK, "is_valid for the project");
    CHECK(valid, "the background populate filled the cache");
    vt_cache_free(cache);

    result = NULL;
    CHECK_RC(vt_create_worktree_optimized(m, "second", "main", &result), VT_OK, "create second");
    CHECK_HAS(result, "\"outcome\":\"hit\"", "the second creation restores node_modules from the cache");
    vt_string_free(result);
    char wt2[1400];
    snprintf(wt2, sizeof wt2, "%s/.worktrees/second", root);
    greet = vt_test_read(wt2, "node_modules/greet/index.js");
    CHECK(greet && strstr(greet, "hello"), "second has node_modules/greet from the cache");
    free(greet);

    /* 3. Existing: nothing changes. */
    result = NULL;
    CHECK_RC(vt_create_worktree_optimized(m, "Feature/Greet Page", "main", &result), VT_OK, "create again");
    CHECK_HAS(result, "\"existed\":true", "an existing worktree is reported as existed");
    CHECK_HAS(result, "Worktree already exists", "with the contract's message");
    vt_string_free(result);

    /* list, metrics, profiler */
    char *listing = NULL, *metrics = NULL;
    CHECK_RC(vt_worktree_manager_list(m, &listing), VT_OK, "list");
    CHECK_HAS(listing, "\"name\":\"second\"", "list has second");
    CHECK_HAS(listing, "\"isMain\":true", "list has the main worktree");
    CHECK_RC(vt_worktree_manager_metrics(m, &metrics), VT_OK, "metrics");
    CHECK_HAS(metrics, "\"name\":\"git-worktree-add\"", "metrics name git-worktree-add");
    CHECK(metrics && !strstr(metrics, "\"avgWorktreeCreation\":null"), "avgWorktreeCreation is a number");
    vt_string_free(listing);
    vt_string_free(metrics);
    vt_profiler *prof = NULL;
    char *stats = NULL;
    CHECK_RC(vt_worktree_manager_profiler(m, &prof), VT_OK, "the manager's profiler");
    CHECK_RC(vt_profiler_stats(prof, "create-worktree-total", &stats), VT_OK, "stats of creations");
    CHECK_HAS(stats, "\"count\":", "creations are counted");
    vt_string_free(stats);
    vt_profiler_free(prof);

    /* warm: the main worktree's key is cached already, so nothing or only image pulls start. */
    char *jobs = NULL;
    CHECK_RC(vt_worktree_manager_warm(m, &jobs), VT_OK, "warm");
    CHECK(jobs && jobs[0] == '[', "warm lists its jobs");
    vt_string_free(jobs);

    /* remove: a dirty worktree needs force (then it is kept in the trash) */
    char *removed = NULL;
    vt_test_write(wt2, "mine.txt", "mine\n");
    CHECK_RC(vt_worktree_manager_remove(m, "second", &removed), VT_WORKTREE_DIRTY, "a dirty worktree is refused");
    CHECK_MSG_HAS("mine.txt", "the message names the change");
    CHECK(vt_test_exists(wt2, "mine.txt"), "nothing lost");
    CHECK_RC(vt_worktree_manager_remove_with(m, "second", "{\"forse\":true}", &removed), VT_PARSE, "bad options");
    CHECK_RC(vt_worktree_manager_remove_with(m, "second", "{\"force\":true}", &removed), VT_OK, "remove second");
    CHECK_HAS(removed, "\"kept\":{", "kept in the trash");
    CHECK_HAS(removed, "\"name\":\"second\"", "remove names it");
    vt_string_free(removed);
    CHECK(!vt_test_exists(wt2, "package.json"), "its folder is gone from .worktrees");
    list = vt_test_sh_output(root, "git worktree list --porcelain");
    CHECK(list && !strstr(list, "/second\n"), "git no longer lists it");
    free(list);

    /* trash: list it, restore it (folder, change and registration come back) */
    char *trash = NULL;
    CHECK_RC(vt_worktree_manager_trash_list(m, &trash), VT_OK, "trash list");
    CHECK(trash && trash[0] == '[', "the trash is a JSON array");
    CHECK_HAS(trash, "\"name\":\"second\"", "the trash lists second");
    CHECK_HAS(trash, "\"originalPath\":", "with where it was");
    CHECK_HAS(trash, "\"expiresAtMs\":", "and when it expires");
    vt_string_free(trash);
    char *restored = NULL;
    CHECK_RC(vt_worktree_manager_trash_restore(m, "second", &restored), VT_OK, "trash restore");
    CHECK_HAS(restored, "\"name\":\"second\"", "restore names the entry");
    vt_string_free(restored);
    char *mine = vt_test_read(wt2, "mine.txt");
    CHECK(mine && strcmp(mine, "mine\n") == 0, "the change is back");
    free(mine);
    list = vt_test_sh_output(root, "git worktree list --porcelain");
    CHECK(list && strstr(list, "/second\n"), "git lists it again");
    free(list);
    trash = NULL;
    CHECK_RC(vt_worktree_manager_trash_list(m, &trash), VT_OK, "trash list after the restore");
    CHECK(trash && strcmp(trash, "[]") == 0, "the trash is empty again");
    vt_string_free(trash);
    char *out = (char *)"untouched";
    CHECK_RC(vt_worktree_manager_trash_restore(m, "second", &out), VT_NOT_FOUND, "restore what is not in the trash");
    CHECK_MSG_HAS("second", "the message names it");
    CHECK_RC(vt_worktree_manager_trash_restore(m, "../up", &out), VT_INVALID_ARGUMENT, "restore a name that is not a slug");
    CHECK_RC(vt_worktree_manager_trash_restore(m, NULL, &out), VT_NULL_ARGUMENT, "restore NULL name");
    CHECK_RC(vt_worktree_manager_trash_restore(m, VT_BAD_UTF8, &out), VT_INVALID_UTF8, "restore bad UTF-8 name");
    CHECK_RC(vt_worktree_manager_trash_list(NULL, &out), VT_NULL_ARGUMENT, "trash list NULL manager");
    CHECK_RC(vt_worktree_manager_trash_list(m, NULL), VT_NULL_ARGUMENT, "trash list NULL out");
    CHECK_RC(vt_worktree_manager_remove_with(m, "second", "{\"force\":true}", &removed), VT_OK, "remove second again");
    vt_string_free(removed);
    CHECK_RC(vt_worktree_manager_remove(m, "never-made", &out), VT_NOT_FOUND, "remove an unknown worktree");

    /* Errors: nothing is created. */
    int events_before = progress.events;
    CHECK_RC(vt_create_worktree_optimized(m, "..", NULL, &out), VT_INVALID_ARGUMENT, "branch '..'");
    CHECK_RC(vt_create_worktree_optimized(m, "---", NULL, &out), VT_INVALID_ARGUMENT, "a branch that slugs to nothing");
    vt_result rc = vt_create_worktree_optimized(m, "from-nowhere", "no-such-branch", &out);
    CHECK(rc == VT_NOT_FOUND || rc == VT_GIT, "an unknown from-ref fails");
    CHECK_MSG_HAS("no-such-branch", "the message names the ref");
    CHECK(!vt_test_exists(root, ".worktrees/from-nowhere"), "no folder for a refused creation");
    branches = vt_test_sh_output(root, "git branch --list from-nowhere");
    CHECK(branches && branches[0] == 0, "no branch for a refused creation");
    free(branches);
    CHECK(progress.events > events_before && progress.saw_error_event, "failures send an error progress event");
    CHECK(progress.complete_events > 0 && progress.error_events > 0, "complete and error events seen");
    CHECK(progress.events_on_caller == 0, "every progress event (complete and error too) comes from a library thread");
    CHECK_RC(vt_create_worktree_optimized(NULL, "x", NULL, &out), VT_NULL_ARGUMENT, "NULL manager");
    CHECK_RC(vt_create_worktree_optimized(m, NULL, NULL, &out), VT_NULL_ARGUMENT, "NULL branch");
    CHECK_RC(vt_create_worktree_optimized(m, "x", NULL, NULL), VT_NULL_ARGUMENT, "NULL result out");
    CHECK_RC(vt_create_worktree_optimized(m, VT_BAD_UTF8, NULL, &out), VT_INVALID_UTF8, "bad UTF-8 branch");
    CHECK_RC(vt_create_worktree_optimized(m, "x", VT_BAD_UTF8, &out), VT_INVALID_UTF8, "bad UTF-8 from");
    CHECK_RC(vt_worktree_manager_list(m, NULL), VT_NULL_ARGUMENT, "list NULL out");
    CHECK_RC(vt_worktree_manager_metrics(NULL, &out), VT_NULL_ARGUMENT, "metrics NULL manager");
    CHECK_RC(vt_worktree_manager_profiler(m, NULL), VT_NULL_ARGUMENT, "profiler NULL out");
    CHECK_RC(vt_worktree_manager_remove(m, NULL, &out), VT_NULL_ARGUMENT, "remove NULL name");
    CHECK_RC(vt_worktree_manager_wait_background(NULL), VT_NULL_ARGUMENT, "wait NULL manager");
    CHECK(out == (char *)"untouched", "no output written by failed calls");

    /* A failing host step fails the creation, and nothing is left behind. */
    vt_task refusing[] = {{"policy", after_git, 1, false, refuse, NULL}};
    vt_worktree_manager *strict = NULL;
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, refusing, 1, &strict), VT_OK, "a manager with a refusing host step");
    out = (char *)"untouched";
    CHECK_RC(vt_create_worktree_optimized(strict, "refused", NULL, &out), VT_TASK_FAILED, "the creation fails");
    CHECK_MSG_HAS("policy check refused this worktree", "with the host step's message");
    CHECK(!vt_test_exists(root, ".worktrees/refused/package.json"), "no worktree is left for a failed creation");
    vt_worktree_manager_free(strict);
    vt_task nameless[] = {{NULL, NULL, 0, false, refuse, NULL}};
    vt_task fnless[] = {{"x", NULL, 0, false, NULL, NULL}};
    vt_worktree_manager *bad = (vt_worktree_manager *)1;
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, nameless, 1, &bad), VT_NULL_ARGUMENT, "a host step without a name");
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, fnless, 1, &bad), VT_NULL_ARGUMENT, "a host step without a function");
    CHECK_MSG_HAS("host_steps[0].run", "the message names the slot");
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, NULL, 2, &bad), VT_NULL_ARGUMENT, "NULL host_steps with a count");
    char not_repo[1400], bad_opts[1600];
    snprintf(not_repo, sizeof not_repo, "%s/not-a-repo", tmp);
    vt_test_mkdirs(not_repo);
    snprintf(bad_opts, sizeof bad_opts, "{\"rootDir\": \"%s\", \"recordHistory\": false}", not_repo);
    rc = vt_worktree_manager_new(bad_opts, NULL, NULL, NULL, 0, &bad);
    CHECK(rc == VT_GIT || rc == VT_NOT_FOUND || rc == VT_INVALID_ARGUMENT, "a folder that is not a git repository");
    CHECK_MSG_HAS("not-a-repo", "the message names the folder");
    CHECK_RC(vt_worktree_manager_new("{\"rootDir\": ", NULL, NULL, NULL, 0, &bad), VT_PARSE, "invalid options JSON");
    CHECK_RC(vt_worktree_manager_new("{}", NULL, NULL, NULL, 0, &bad), VT_PARSE, "options without rootDir");
    CHECK_MSG_HAS("rootDir", "the message names rootDir");
    snprintf(bad_opts, sizeof bad_opts, "{\"rootDir\": \"%s\", \"runtime\": \"vm\"}", root);
    CHECK_RC(vt_worktree_manager_new(bad_opts, NULL, NULL, NULL, 0, &bad), VT_INVALID_ARGUMENT, "an unknown runtime");
    CHECK_RC(vt_worktree_manager_new(NULL, NULL, NULL, NULL, 0, &bad), VT_NULL_ARGUMENT, "NULL options");
    CHECK_RC(vt_worktree_manager_new(VT_BAD_UTF8, NULL, NULL, NULL, 0, &bad), VT_INVALID_UTF8, "bad UTF-8 options");
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, NULL, 0, NULL), VT_NULL_ARGUMENT, "NULL manager_out");
    CHECK(bad == (vt_worktree_manager *)1, "no handle written on failure");

    /* include and hooks through the options JSON: an ignored file copied, then the hook sees it */
    CHECK(vt_test_sh(root, "printf 'local.conf\\nbig.cache\\n' >> .gitignore && git commit -qam 'ignore local.conf' && "
                           "printf 'from main\\n' > local.conf && head -c 8203 /dev/zero | tr '\\0' x > big.cache") == 0,
          "local.conf and big.cache are ignored and present in the main worktree");
    char options2[4096];
    snprintf(options2, sizeof options2,
             "{\"rootDir\": \"%s\", \"cacheDir\": \"%s\", \"historyPath\": \"%s\", \"runtime\": \"none\", "
             "\"install\": false, \"include\": [\"local.conf\", \"big.cache\"], \"includeDirectIo\": true, "
             "\"hooks\": {\"post-create\": [{\"command\": \"cp local.conf hook-saw.txt\", \"name\": \"saw\"}]}}",
             root, cache_dir, history);
    vt_worktree_manager *m2 = NULL;
    CHECK_RC(vt_worktree_manager_new(options2, NULL, NULL, NULL, 0, &m2), VT_OK, "a manager with include and hooks");
    char *result2 = NULL;
    CHECK_RC(vt_create_worktree_optimized(m2, "with-include", NULL, &result2), VT_OK, "create with-include");
    CHECK_HAS(result2, "\"copy-ignored\":{", "the copy-ignored step is in the result");
    CHECK_HAS(result2, "\"postCreate\":[\"hook:saw\"]", "the hook ran as a step");
    /* includeDirectIo: big.cache (4 KiB or more) was written by direct I/O where the filesystem takes it */
    CHECK_HAS(result2, vt_test_takes_direct_io(root) ? "\"direct\":1," : "\"direct\":0,",
              "the direct I/O count matches what the filesystem takes");
    vt_string_free(result2);
    char wt_inc[1400];
    snprintf(wt_inc, sizeof wt_inc, "%s/.worktrees/with-include", root);
    char *copied = vt_test_read(wt_inc, "local.conf");
    CHECK_HAS(copied, "from main", "the ignored file was copied");
    free(copied);
    char *saw = vt_test_read(wt_inc, "hook-saw.txt");
    CHECK_HAS(saw, "from main", "the hook ran after the copy");
    free(saw);
    vt_worktree_manager_free(m2);

    vt_profiler *kept = NULL;
    CHECK_RC(vt_worktree_manager_profiler(m, &kept), VT_OK, "a profiler handle kept past the manager");
    vt_worktree_manager_free(m);
    vt_worktree_manager_free(NULL);
    char *kept_report = NULL;
    CHECK_RC(vt_profiler_report(kept, &kept_report), VT_OK, "the shared profiler outlives its manager");
    CHECK_HAS(kept_report, "create-worktree-total", "with the creations in it");
    vt_string_free(kept_report);
    vt_profiler_free(kept);
    /* After free, no event may arrive: userdata (on our stack) is about to go away. */
    int after_free = progress.events;
    CHECK(strstr(progress.steps, "git,") != NULL, "progress had a git step");
    CHECK(strstr(progress.steps, "complete,") != NULL, "progress had a complete step");
    CHECK(progress.max_concurrent == 1, "progress calls never overlap");
    CHECK(host_calls == 2, "the host step ran once per new worktree (not for the existing one)");
    usleep(100000);
    CHECK(progress.events == after_free, "no progress event after vt_worktree_manager_free");
    pthread_mutex_destroy(&progress.lock);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    return vt_test_done();
}
