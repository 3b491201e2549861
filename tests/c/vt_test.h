/* Tiny test helpers for the C tests of libvibetrees: checks print TAP-like `ok` / `not ok` lines,
 * and vt_test_done() returns the exit status (tests/c/run.sh counts a program as passed when it
 * exits 0 and printed no `not ok`). */
#ifndef VT_TEST_H
#define VT_TEST_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vibetrees.h"

static int vt_checks_run = 0;
static int vt_checks_failed = 0;

/* The calling thread's last error message, in a malloc'd buffer (free it). */
static inline char *vt_test_last_message(void) {
    size_t needed = 0;
    vt_result rc = vt_last_error_message(NULL, 0, &needed);
    if (rc != VT_BUFFER_TOO_SMALL || needed == 0) {
        return strdup("<vt_last_error_message failed>");
    }
    char *buf = malloc(needed);
    if (buf == NULL || vt_last_error_message(buf, needed, NULL) != VT_OK) {
        free(buf);
        return strdup("<vt_last_error_message failed>");
    }
    return buf;
}

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        vt_checks_run++;                                                                     \
        if (cond) {                                                                          \
            printf("ok %d - %s\n", vt_checks_run, what);                                     \
        } else {                                                                             \
            vt_checks_failed++;                                                              \
            printf("not ok %d - %s (%s:%d: %s)\n", vt_checks_run, what, __FILE__, __LINE__, \
                   #cond);                                                                   \
        }                                                                                    \
        fflush(stdout);                                                                      \
    } while (0)

/* Checks that `expr` returns `expected`; on a mismatch prints the last error message. */
#define CHECK_RC(expr, expected, what)                                                       \
    do {                                                                                     \
        vt_result rc_ = (expr);                                                              \
        vt_checks_run++;                                                                     \
        if (rc_ == (expected)) {                                                             \
            printf("ok %d - %s\n", vt_checks_run, what);                                     \
        } else {                                                                             \
            char *msg_ = vt_test_last_message();                                             \
            vt_checks_failed++;                                                              \
            printf("not ok %d - %s (%s:%d: got %s, want %s; last error: %s)\n", vt_checks_run, \
                   what, __FILE__, __LINE__, vt_result_code(rc_), vt_result_code(expected),   \
                   msg_);                                                                    \
            free(msg_);                                                                      \
        }                                                                                    \
        fflush(stdout);                                                                      \
    } while (0)

/* Checks that the last error message contains `needle`. */
#define CHECK_MSG_HAS(needle, what)                                                          \
    do {                                                                                     \
        char *msg_ = vt_test_last_message();                                                 \
        vt_checks_run++;                                                                     \
        if (strstr(msg_, (needle)) != NULL) {                                                \
            printf("ok %d - %s\n", vt_checks_run, what);                                     \
        } else {                                                                             \
            vt_checks_failed++;                                                              \
            printf("not ok %d - %s (%s:%d: message \"%s\" lacks \"%s\")\n", vt_checks_run,   \
                   what, __FILE__, __LINE__, msg_, (needle));                                \
        }                                                                                    \
        free(msg_);                                                                          \
        fflush(stdout);                                                                      \
    } while (0)

/* Checks that `haystack` (a string, may be NULL) contains `needle`. */
#define CHECK_HAS(haystack, needle, what)                                                    \
    do {                                                                                     \
        const char *h_ = (haystack);                                                         \
        CHECK(h_ != NULL && strstr(h_, (needle)) != NULL, what);                             \
        if (h_ == NULL || strstr(h_, (needle)) == NULL)                                      \
            printf("#   in: %s\n#   looked for: %s\n", h_ ? h_ : "(null)", (needle));         \
    } while (0)

static inline int vt_test_done(void) {
    printf("# %d checks, %d failed\n", vt_checks_run, vt_checks_failed);
    return vt_checks_failed == 0 && vt_checks_run > 0 ? 0 : 1;
}

/* A bad UTF-8 string (an overlong encoding of '/'), for the INVALID_UTF8 paths. */
static const char VT_BAD_UTF8[] = {'a', (char)0xC0, (char)0xAF, 'b', 0};

#endif

/* ---- files and folders (for the cache and worktree tests) ---- */
#ifndef VT_TEST_FS
#define VT_TEST_FS
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A new empty folder under $VT_TEST_TMP (or /tmp), its path in `buf`. */
static inline int vt_test_mkdtemp(char *buf, size_t len, const char *tag) {
    const char *base = getenv("VT_TEST_TMP");
    snprintf(buf, len, "%s/%s.XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(buf) != NULL ? 0 : -1;
}

/* mkdir -p */
static inline int vt_test_mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes `content` to `dir/rel` (making the parent folders). */
static inline int vt_test_write(const char *dir, const char *rel, const char *content) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    if (vt_test_mkdirs(path) != 0) return -1;
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(content, f);
    return fclose(f);
}

/* The content of `dir/rel` (malloc'd, free it), or NULL. */
static inline char *vt_test_read(const char *dir, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 256;
            buf = realloc(buf, cap);
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    else buf[n] = 0;
    return buf;
}

/* Whether `dir/rel` exists (without following a final symlink). */
static inline int vt_test_exists(const char *dir, const char *rel) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return lstat(path, &st) == 0;
}

/* Runs a shell command with `dir` as the working folder; returns its exit status. */
static inline int vt_test_sh(const char *dir, const char *cmd) {
    char full[8192];
    snprintf(full, sizeof full, "cd '%s' && %s", dir, cmd);
    int rc = system(full);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Whether files in `dir` can be opened for direct I/O (O_DIRECT); 0 where the platform has none. */
static inline int vt_test_takes_direct_io(const char *dir) {
#ifdef O_DIRECT
    char path[4096];
    snprintf(path, sizeof path, "%s/.direct-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0600);
    if (fd < 0) return 0;
    close(fd);
    unlink(path);
    return 1;
#else
    (void)dir;
    return 0;
#endif
}

/* Makes `dir` a git repository on `main` with everything in it committed; returns the status. */
static inline int vt_test_git_repo(const char *dir) {
    return vt_test_sh(dir, "git init -q -b main && git config user.email t@example.invalid && "
                           "git config user.name t && git add -A && git commit -q -m init");
}

/* Output of a shell command run in `dir` (malloc'd: free it), or NULL. */
static inline char *vt_test_sh_output(const char *dir, const char *cmd) {
    char full[4096];
    snprintf(full, sizeof full, "cd '%s' && %s", dir, cmd);
    FILE *f = popen(full, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    pclose(f);
    return buf;
}
#endif
