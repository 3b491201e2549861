/* vt_port_registry_*: the VibeTrees server's port registry over ports.json, on real files under a
 * private HOME (tests/c/run.sh sets it): the server's results for the server's calls, a handle
 * made before another process allocates sees the allocation, two processes (fork) allocating at
 * once never hand out one port twice nor lose a key, bad input is refused and changes nothing.
 * Then vt_worktree_manager_new_with_profiler on a real git project: the host's profiler gets the
 * creation's spans. */
#include "vt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A port with `n` ports after it that nothing listens on (the kernel's choice for port 0). */
static unsigned short free_base(int n) {
    for (;;) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        bind(s, (struct sockaddr *)&a, sizeof a);
        getsockname(s, (struct sockaddr *)&a, &len);
        close(s);
        unsigned short p = ntohs(a.sin_port);
        int ok = p < 60000;
        for (int q = 0; ok && q < n; q++) {
            bool used = true;
            vt_is_port_in_use((unsigned short)(p + q), &used);
            ok = !used;
        }
        if (ok) return p;
    }
}

/* Allocates `rounds` worktrees `<prefix>-<i>` {api, postgres} with its own handle. */
static int writer(const char *root, const char *prefix, int rounds, unsigned short base) {
    vt_port_registry *r = NULL;
    if (vt_port_registry_new(root, &r) != VT_OK) return 1;
    char wt[64], services[128];
    snprintf(services, sizeof services, "{\"api\": %u, \"postgres\": %u}", base, base);
    for (int i = 0; i < rounds; i++) {
        snprintf(wt, sizeof wt, "%s-%d", prefix, i);
        char *out = NULL;
        if (vt_port_registry_allocate_atomic(r, wt, services, &out) != VT_OK) return 1;
        vt_string_free(out);
        unsigned short p = 0;
        if (vt_port_registry_allocate(r, "scratch", "api", base, &p) != VT_OK) return 1;
        if (vt_port_registry_release(r, "scratch", NULL) != VT_OK) return 1;
    }
    vt_port_registry_free(r);
    return 0;
}

static void semantics(const char *home) {
    vt_port_registry *r = NULL;
    CHECK_RC(vt_port_registry_new("/home/me/code/shop", &r), VT_OK, "open the registry");
    char *file = NULL;
    CHECK_RC(vt_port_registry_file(r, &file), VT_OK, "registry file");
    char want[2048];
    snprintf(want, sizeof want, "%s/.vibetrees/code-shop/ports.json", home);
    CHECK(file && strcmp(file, want) == 0, "~/.vibetrees/<parent>-<child>/ports.json");
    char *json = NULL;
    CHECK_RC(vt_port_registry_ports(r, &json), VT_OK, "ports of an empty registry");
    CHECK(json && strcmp(json, "{}") == 0, "empty map");
    vt_string_free(json);

    unsigned short base = free_base(6), p = 0;
    CHECK_RC(vt_port_registry_allocate(r, "feat-a", "postgres", base, &p), VT_OK, "allocate");
    CHECK(p == base, "the base port first");
    CHECK_RC(vt_port_registry_allocate(r, "feat-a", "api", base, &p), VT_OK, "allocate again");
    CHECK(p == base + 1, "next port up");
    CHECK_RC(vt_port_registry_allocate(r, "feat-a", "postgres", base + 40, &p), VT_OK, "existing key");
    CHECK(p == base, "an existing key keeps its port");
    char services[128], expect[256];
    snprintf(services, sizeof services, "{\"web\": %u, \"api\": %u}", base, base);
    CHECK_RC(vt_port_registry_allocate_atomic(r, "feat-b", services, &json), VT_OK, "allocate_atomic");
    snprintf(expect, sizeof expect, "{\"web\":%u,\"api\":%u}", base + 2, base + 3);
    CHECK(json && strcmp(json, expect) == 0, "in the order asked, skipping registered ports");
    vt_string_free(json);
    char *text = vt_test_read(home, ".vibetrees/code-shop/ports.json");
    snprintf(expect, sizeof expect,
             "{\n  \"feat-a:postgres\": %u,\n  \"feat-a:api\": %u,\n  \"feat-b:web\": %u,\n  \"feat-b:api\": %u\n}",
             base, base + 1, base + 2, base + 3);
    CHECK(text && strcmp(text, expect) == 0, "the file as JSON.stringify(map, null, 2)");
    free(text);
    CHECK_RC(vt_port_registry_worktree_ports(r, "feat-a", &json), VT_OK, "worktree ports");
    snprintf(expect, sizeof expect, "{\"postgres\":%u,\"api\":%u}", base, base + 1);
    CHECK(json && strcmp(json, expect) == 0, "{ service: port }");
    vt_string_free(json);
    size_t n = 0;
    CHECK_RC(vt_port_registry_release(r, "feat-a", &n), VT_OK, "release");
    CHECK(n == 2, "two keys released");

    /* a port something listens on is skipped, seen without lsof */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)(base + 10));
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 1) == 0, "listen on base+10");
    bool used = false;
    CHECK_RC(vt_is_port_in_use((unsigned short)(base + 10), &used), VT_OK, "is_port_in_use");
    CHECK(used, "the listener is seen");
    CHECK_RC(vt_port_registry_allocate(r, "busy", "api", (unsigned short)(base + 10), &p), VT_OK, "allocate over a listener");
    CHECK(p == base + 11, "the listened port is skipped");
    close(s);

    /* syncFromWorktrees */
    char wt[1200];
    snprintf(wt, sizeof wt, "%s/old-wt", home);
    vt_test_write(wt, ".env", "COMPOSE_PROJECT_NAME=vibe_old\nPOSTGRES_PORT=6543\nMINIO_CONSOLE_PORT=9101\n");
    char list[2600];
    snprintf(list, sizeof list, "[{\"name\":\"old\",\"path\":\"%s\"},{\"name\":\"gone\",\"path\":\"%s/nope\"}]", wt, home);
    CHECK_RC(vt_port_registry_sync_from_worktrees(r, list, &n), VT_OK, "sync");
    CHECK(n == 2, "two keys added from .env");
    CHECK_RC(vt_port_registry_sync_from_worktrees(r, list, &n), VT_OK, "sync again");
    CHECK(n == 0, "nothing added twice");
    CHECK_RC(vt_port_registry_worktree_ports(r, "old", &json), VT_OK, "synced ports");
    CHECK(json && strcmp(json, "{\"postgres\":6543,\"minio-console\":9101}") == 0, "services from env names");
    vt_string_free(json);

    /* save_changes writes only what changed between the two maps */
    CHECK_RC(vt_port_registry_save_changes(r, "{\"old:postgres\":6543}", "{\"hand:api\":4000}", &n), VT_OK, "save changes");
    CHECK(n == 2, "one set, one removed");
    CHECK_RC(vt_port_registry_worktree_ports(r, "old", &json), VT_OK, "after save");
    CHECK(json && strcmp(json, "{\"minio-console\":9101}") == 0, "other keys untouched");
    vt_string_free(json);

    /* bad input: refused, the file unchanged */
    char *before = vt_test_read(home, ".vibetrees/code-shop/ports.json");
    CHECK_RC(vt_port_registry_allocate(r, "x", "api", 0, &p), VT_INVALID_ARGUMENT, "base port 0");
    CHECK_RC(vt_port_registry_allocate(r, "x:y", "api", 3000, &p), VT_INVALID_ARGUMENT, "':' in a worktree name");
    CHECK_RC(vt_port_registry_allocate(r, NULL, "api", 3000, &p), VT_NULL_ARGUMENT, "NULL worktree");
    CHECK_RC(vt_port_registry_allocate(r, VT_BAD_UTF8, "api", 3000, &p), VT_INVALID_UTF8, "bad UTF-8");
    CHECK_RC(vt_port_registry_allocate(r, "x", "api", 3000, NULL), VT_NULL_ARGUMENT, "NULL port_out");
    CHECK_RC(vt_port_registry_allocate_atomic(r, "x", "[1]", &json), VT_PARSE, "services not an object");
    CHECK_RC(vt_port_registry_allocate_atomic(r, "x", "{\"api\": 70000}", &json), VT_INVALID_ARGUMENT, "base port too big");
    CHECK_RC(vt_port_registry_new("/", &r), VT_INVALID_ARGUMENT, "a root with no component");
    char *after = vt_test_read(home, ".vibetrees/code-shop/ports.json");
    CHECK(before && after && strcmp(before, after) == 0, "nothing written by refused calls");
    free(before);
    free(after);
    vt_test_write(home, ".vibetrees/code-shop/ports.json", "{ broken");
    CHECK_RC(vt_port_registry_ports(r, &json), VT_PARSE, "a corrupt registry is an error");
    CHECK_RC(vt_port_registry_allocate(r, "x", "api", 3000, &p), VT_PARSE, "and is not written over");
    after = vt_test_read(home, ".vibetrees/code-shop/ports.json");
    CHECK(after && strcmp(after, "{ broken") == 0, "left untouched");
    free(after);
    vt_string_free(file);
    vt_port_registry_free(r);
    vt_port_registry_free(NULL);
}

static void two_processes(const char *home) {
    char root[1200];
    snprintf(root, sizeof root, "%s/projects/multi", home);
    vt_port_registry *r = NULL;
    CHECK_RC(vt_port_registry_new(root, &r), VT_OK, "open (before the others allocate)");
    unsigned short base = free_base(40);
    pid_t child = fork();
    if (child == 0) _exit(writer(root, "child", 8, base));
    int mine = writer(root, "parent", 8, base);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(mine == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "both processes allocated 8 rounds");
    char *json = NULL;
    /* the handle made before sees every allocation */
    CHECK_RC(vt_port_registry_ports(r, &json), VT_OK, "read the map");
    int keys = 0;
    unsigned seen[64];
    int dup = 0;
    for (const char *q = json; q && (q = strchr(q, ':')) != NULL;) {
        /* entries look like "name-i:service":port */
        const char *colon = strstr(q, "\":");
        if (!colon) break;
        unsigned port = (unsigned)strtoul(colon + 2, NULL, 10);
        for (int k = 0; k < keys; k++) dup |= seen[k] == port;
        if (keys < 64) seen[keys] = port;
        keys++;
        q = colon + 2;
    }
    CHECK(keys == 32, "32 keys: none lost, the scratch ones released");
    CHECK(!dup, "no port handed out twice");
    if (keys != 32 || dup) printf("#   %s\n", json);
    vt_string_free(json);
    CHECK_RC(vt_port_registry_worktree_ports(r, "child-7", &json), VT_OK, "the child's last worktree");
    CHECK_HAS(json, "\"postgres\":", "seen without reopening");
    vt_string_free(json);
    vt_port_registry_free(r);
}

static void shared_profiler(const char *tmp) {
    char root[1200], cache_dir[1200], history[1200];
    snprintf(root, sizeof root, "%s/projects/app", tmp);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmp);
    snprintf(history, sizeof history, "%s/history.sqlite", tmp);
    vt_test_write(root, "package.json", "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\"\n}\n");
    vt_test_write(root, "src/index.js", "console.log('hi');\n");
    vt_test_write(root, ".gitignore", "node_modules/\n.env\n.claude/\n.worktrees/\n");
    CHECK(vt_test_sh(root, "npm install --no-audit --no-fund --offline >/dev/null 2>&1") == 0, "npm install");
    CHECK(vt_test_git_repo(root) == 0, "a git repository on main");
    char options[4096];
    snprintf(options, sizeof options,
             "{\"rootDir\": \"%s\", \"cacheDir\": \"%s\", \"historyPath\": \"%s\", \"runtime\": \"none\"}",
             root, cache_dir, history);
    vt_profiler *host = NULL;
    CHECK_RC(vt_profiler_new(NULL, &host), VT_OK, "the host's profiler");
    vt_worktree_manager *m = NULL;
    CHECK_RC(vt_worktree_manager_new_with_profiler(options, NULL, NULL, NULL, NULL, 0, &m), VT_NULL_ARGUMENT,
             "a NULL profiler is refused");
    CHECK_RC(vt_worktree_manager_new_with_profiler(options, host, NULL, NULL, NULL, 0, &m), VT_OK,
             "a manager recording into it");
    char *result = NULL;
    CHECK_RC(vt_create_worktree_optimized(m, "shared-profile", NULL, &result), VT_OK, "create");
    CHECK_HAS(result, "\"success\":true", "created");
    vt_string_free(result);
    char *report = NULL;
    CHECK_RC(vt_profiler_report(host, &report), VT_OK, "the host's report");
    const char *spans[] = {"create-worktree-total", "git-worktree-add", "allocate-ports", "mcp-discovery",
                           "npm-bootstrap", "docker-compose-up"};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "\"name\":\"%s\"", spans[i]);
        CHECK_HAS(report, needle, spans[i]);
    }
    vt_string_free(report);
    vt_profiler *again = NULL;
    CHECK_RC(vt_worktree_manager_profiler(m, &again), VT_OK, "the manager's profiler handle");
    char *stats = NULL;
    CHECK_RC(vt_profiler_stats(again, "create-worktree-total", &stats), VT_OK, "its stats");
    CHECK_HAS(stats, "\"count\":1", "the same profiler");
    vt_string_free(stats);
    vt_profiler_free(again);
    vt_profiler_free(host); /* the manager keeps it alive */
    CHECK_RC(vt_worktree_manager_wait_background(m), VT_OK, "background done");
    vt_worktree_manager_free(m);
}

int main(void) {
    const char *home = getenv("HOME");
    char tmp[1024];
    CHECK(home != NULL && vt_test_mkdtemp(tmp, sizeof tmp, "ports") == 0, "HOME and a temp folder");
    semantics(home);
    two_processes(home);
    shared_profiler(tmp);
    return vt_test_done();
}
