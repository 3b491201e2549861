/* vt_cancel_token_* and vt_create_worktree_optimized_cancellable on a real temporary git
 * repository: a creation cancelled from its progress callback once its ports are allocated
 * returns VT_CANCELLED and leaves nothing: no folder, no registration, no branch it made, no
 * ports, no staging folder (checked on disk and with the git CLI); the name can be created
 * afterwards. Error paths: NULL arguments, a token cancelled before the call. */
#include "vt_test.h"

#include <pthread.h>

typedef struct {
    vt_cancel_token *token;
    int cancelled;
} cancel_at_ports;

/* Cancels the creation at its first "ports" event (a progress callback may cancel). */
static void on_progress(void *userdata, const char *event_json) {
    cancel_at_ports *c = userdata;
    if (!c->cancelled && strstr(event_json, "\"step\":\"ports\"")) {
        c->cancelled = 1;
        vt_cancel_token_cancel(c->token);
    }
}

/* Nothing of worktree `name` is left in the project at `root`. */
static void check_nothing_left(const char *root, const char *name) {
    char wt[1400], what[256];
    snprintf(wt, sizeof wt, "%s/.worktrees/%s", root, name);
    snprintf(what, sizeof what, "no folder for %s", name);
    CHECK(!vt_test_exists(wt, ""), what);
    char *list = vt_test_sh_output(root, "git worktree list --porcelain");
    snprintf(what, sizeof what, "/.worktrees/%s\n", name);
    CHECK(list && !strstr(list, what), "no registration left");
    free(list);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "git branch --list '%s'", name);
    char *branch = vt_test_sh_output(root, cmd);
    CHECK(branch && branch[0] == 0, "the branch the creation made is deleted");
    free(branch);
    char *staging = vt_test_sh_output(root, "ls -A .worktrees/.staging 2>/dev/null");
    CHECK(staging && staging[0] == 0, "no staging folder left");
    free(staging);
    /* the ports registry of this project, under the test's own HOME */
    char registry[1400];
    snprintf(registry, sizeof registry, "%s/.vibetrees/projects-app/ports.json", getenv("HOME"));
    FILE *f = fopen(registry, "r");
    if (f) {
        char ports[8192] = {0};
        size_t n = fread(ports, 1, sizeof ports - 1, f);
        ports[n] = 0;
        fclose(f);
        char key[128];
        snprintf(key, sizeof key, "\"%s:", name);
        CHECK(!strstr(ports, key), "its ports were released");
    }
}

int main(void) {
    char tmp[1024], root[1200], cache_dir[1200], history[1200];
    CHECK(vt_test_mkdtemp(tmp, sizeof tmp, "worktree-cancel") == 0, "temp folder");
    snprintf(root, sizeof root, "%s/projects/app", tmp);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmp);
    snprintf(history, sizeof history, "%s/history.sqlite", tmp);
    vt_test_write(root, "src/index.js", "console.log('app');\n");
    vt_test_write(root, ".gitignore", ".env\n.claude/\n.worktrees/\n");
    CHECK(vt_test_git_repo(root) == 0, "a git repository on main");

    char options[4096];
    snprintf(options, sizeof options,
             "{\"rootDir\": \"%s\", \"cacheDir\": \"%s\", \"historyPath\": \"%s\", \"runtime\": \"none\"}",
             root, cache_dir, history);
    cancel_at_ports state = {NULL, 0};
    CHECK_RC(vt_cancel_token_new(&state.token), VT_OK, "a cancel token");
    vt_worktree_manager *m = NULL;
    CHECK_RC(vt_worktree_manager_new(options, on_progress, &state, NULL, 0, &m), VT_OK, "open the project");

    /* 1. Cancelled once its ports are allocated: VT_CANCELLED, nothing left. */
    char *result = (char *)1;
    CHECK_RC(vt_create_worktree_optimized_cancellable(m, "Stopped Here", NULL, state.token, &result),
             VT_CANCELLED, "the cancelled creation returns VT_CANCELLED");
    CHECK(state.cancelled == 1, "the callback cancelled it");
    CHECK(result == (char *)1, "no result written on cancel");
    CHECK_MSG_HAS("stopped-here", "the message names the worktree");
    CHECK_RC(vt_worktree_manager_wait_background(m), VT_OK, "wait for the background deletion");
    check_nothing_left(root, "stopped-here");

    /* 2. A token cancelled before the call: VT_CANCELLED at once, nothing touched. */
    CHECK_RC(vt_create_worktree_optimized_cancellable(m, "never-made", NULL, state.token, &result),
             VT_CANCELLED, "a cancelled token stops the next creation before it starts");
    check_nothing_left(root, "never-made");

    /* 3. The same name, without a token: made. */
    CHECK_RC(vt_create_worktree_optimized_cancellable(m, "Stopped Here", "main", NULL, &result), VT_OK,
             "the name is free again (NULL token)");
    CHECK_HAS(result, "\"name\":\"stopped-here\"", "made");
    vt_string_free(result);

    /* Error paths. */
    CHECK_RC(vt_cancel_token_new(NULL), VT_NULL_ARGUMENT, "NULL token_out");
    CHECK_RC(vt_cancel_token_cancel(NULL), VT_NULL_ARGUMENT, "cancel NULL");
    CHECK_RC(vt_create_worktree_optimized_cancellable(NULL, "x", NULL, NULL, &result), VT_NULL_ARGUMENT,
             "NULL manager");
    vt_cancel_token_free(NULL);

    vt_worktree_manager_free(m);
    vt_cancel_token_free(state.token);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    return vt_test_done();
}
