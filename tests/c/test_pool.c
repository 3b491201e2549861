/* vt_worktree_manager_pool_fill / _pool_status / _pool_clear on a real temporary git repository:
 * a fill makes one spare (poolSize 1), the status lists it, a creation from main claims it
 * ("pool":{"claimed":true,"spareAgeMs":N}) and the claimed worktree is a clean, registered
 * worktree for git; the refill after the claim makes a new spare, and clear removes it. With
 * poolSize 0 a fill makes nothing. Error paths: an unknown from-ref (VT_NOT_FOUND), NULL
 * arguments, bad UTF-8. */
#include "vt_test.h"

/* Counts the spares in a pool status JSON (each has one "ageMs" key). */
static int spare_count(const char *status) {
    int n = 0;
    for (const char *p = status; p && (p = strstr(p, "\"ageMs\":")) != NULL; p++) n++;
    return n;
}

static vt_worktree_manager *open_manager(const char *root, const char *tmp, const char *extra) {
    char options[4096];
    snprintf(options, sizeof options,
             "{\"rootDir\": \"%s\", \"cacheDir\": \"%s/cache\", \"historyPath\": \"%s/history.sqlite\","
             " \"runtime\": \"none\"%s}",
             root, tmp, tmp, extra);
    vt_worktree_manager *m = NULL;
    CHECK_RC(vt_worktree_manager_new(options, NULL, NULL, NULL, 0, &m), VT_OK, "open the project");
    return m;
}

int main(void) {
    char tmp[1024], root[1200];
    CHECK(vt_test_mkdtemp(tmp, sizeof tmp, "pool") == 0, "temp folder");
    snprintf(root, sizeof root, "%s/projects/app", tmp);
    vt_test_write(root, "src/index.js", "console.log('app');\n");
    vt_test_write(root, "src/lib/util.js", "module.exports = 1;\n");
    vt_test_write(root, ".gitignore", ".env\n.claude/\n.worktrees/\n");
    CHECK(vt_test_git_repo(root) == 0, "a git repository on main");

    /* poolSize 0: a fill makes nothing and says why. */
    vt_worktree_manager *off = open_manager(root, tmp, ", \"poolSize\": 0");
    char *report = NULL;
    CHECK_RC(vt_worktree_manager_pool_fill(off, NULL, &report), VT_OK, "fill with poolSize 0");
    CHECK_HAS(report, "\"made\":0", "poolSize 0 makes no spare");
    CHECK(report && !strstr(report, "\"stopped\":null"), "and says why it stopped");
    vt_string_free(report);
    char *status = NULL;
    CHECK_RC(vt_worktree_manager_pool_status(off, &status), VT_OK, "status with poolSize 0");
    CHECK_HAS(status, "\"size\":0", "the status shows poolSize 0");
    CHECK(spare_count(status) == 0, "no spare");
    vt_string_free(status);
    vt_worktree_manager_free(off);

    vt_worktree_manager *m = open_manager(root, tmp, ", \"poolSize\": 1");

    /* fill: one spare for main, listed by status, invisible to git. */
    report = NULL;
    CHECK_RC(vt_worktree_manager_pool_fill(m, "main", &report), VT_OK, "fill for main");
    CHECK_HAS(report, "\"made\":1", "the fill made one spare");
    CHECK_HAS(report, "\"from\":\"refs/heads/main\"", "for refs/heads/main");
    vt_string_free(report);
    status = NULL;
    CHECK_RC(vt_worktree_manager_pool_status(m, &status), VT_OK, "status");
    CHECK(spare_count(status) == 1, "the status lists one spare");
    CHECK_HAS(status, "\"from\":\"refs/heads/main\"", "made from main");
    CHECK_HAS(status, "/.worktrees/.pool", "under <worktreeBase>/.pool");
    char *head = vt_test_sh_output(root, "git rev-parse main");
    if (head) head[strcspn(head, "\n")] = 0;
    char commit[128];
    snprintf(commit, sizeof commit, "\"commit\":\"%s\"", head ? head : "?");
    CHECK_HAS(status, commit, "holding main's commit");
    free(head);
    vt_string_free(status);
    char *list = vt_test_sh_output(root, "git worktree list --porcelain");
    CHECK(list && !strstr(list, ".pool"), "git does not list the spare");
    free(list);

    /* a second fill: the pool is full already. */
    report = NULL;
    CHECK_RC(vt_worktree_manager_pool_fill(m, NULL, &report), VT_OK, "fill again (the main worktree's branch)");
    CHECK_HAS(report, "\"made\":0", "a full pool makes nothing more");
    vt_string_free(report);

    /* a creation from main claims the spare. */
    char *result = NULL;
    CHECK_RC(vt_create_worktree_optimized(m, "Pooled One", "main", &result), VT_OK, "create from main");
    CHECK_HAS(result, "\"success\":true", "success");
    CHECK_HAS(result, "\"claimed\":true", "the creation claimed the spare");
    CHECK_HAS(result, "\"spareAgeMs\":", "with the spare's age");
    vt_string_free(result);
    char wt[1400];
    snprintf(wt, sizeof wt, "%s/.worktrees/pooled-one", root);
    CHECK(vt_test_exists(wt, "src/lib/util.js"), "the claimed worktree has the files");
    char *clean = vt_test_sh_output(wt, "git status --porcelain");
    CHECK(clean && clean[0] == 0, "git status is clean in the claimed worktree");
    free(clean);
    list = vt_test_sh_output(root, "git worktree list --porcelain");
    CHECK_HAS(list, "branch refs/heads/pooled-one", "git lists the claimed worktree on its branch");
    free(list);

    /* the refill after the claim makes a new spare; clear removes it. */
    CHECK_RC(vt_worktree_manager_wait_background(m), VT_OK, "wait for the refill");
    status = NULL;
    CHECK_RC(vt_worktree_manager_pool_status(m, &status), VT_OK, "status after the claim");
    CHECK(spare_count(status) == 1, "the refill made a new spare");
    vt_string_free(status);
    size_t removed = 0;
    CHECK_RC(vt_worktree_manager_pool_clear(m, &removed), VT_OK, "clear");
    CHECK(removed == 1, "clear removed the spare");
    status = NULL;
    CHECK_RC(vt_worktree_manager_pool_status(m, &status), VT_OK, "status after clear");
    CHECK(spare_count(status) == 0, "the pool is empty");
    CHECK_HAS(status, "\"bytes\":0", "and holds no bytes");
    vt_string_free(status);
    CHECK_RC(vt_worktree_manager_pool_clear(m, NULL), VT_OK, "clear an empty pool (NULL removed_out)");
    CHECK(vt_test_exists(wt, "src/index.js"), "clear never touches a claimed worktree");

    /* errors */
    report = (char *)1;
    CHECK_RC(vt_worktree_manager_pool_fill(m, "no-such-branch", &report), VT_NOT_FOUND, "an unknown from-ref");
    CHECK_MSG_HAS("no-such-branch", "the message names the ref");
    CHECK(report == (char *)1, "nothing written on failure");
    CHECK_RC(vt_worktree_manager_pool_fill(m, VT_BAD_UTF8, &report), VT_INVALID_UTF8, "bad UTF-8 from");
    CHECK_RC(vt_worktree_manager_pool_fill(NULL, NULL, &report), VT_NULL_ARGUMENT, "fill: NULL manager");
    CHECK_RC(vt_worktree_manager_pool_fill(m, NULL, NULL), VT_NULL_ARGUMENT, "fill: NULL report_json_out");
    CHECK_RC(vt_worktree_manager_pool_status(NULL, &status), VT_NULL_ARGUMENT, "status: NULL manager");
    CHECK_RC(vt_worktree_manager_pool_status(m, NULL), VT_NULL_ARGUMENT, "status: NULL status_json_out");
    CHECK_RC(vt_worktree_manager_pool_clear(NULL, NULL), VT_NULL_ARGUMENT, "clear: NULL manager");

    CHECK_RC(vt_worktree_manager_wait_background(m), VT_OK, "wait for the background work");
    vt_worktree_manager_free(m);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    return vt_test_done();
}
