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
