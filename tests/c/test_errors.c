/* The last-error mechanics: vt_last_error_code / vt_last_error_message after a failure, buffer
 * sizes (exact, short, zero, UTF-8 boundary), and that errors are per thread. */
#include "vt_test.h"

#include <pthread.h>

static void *fail_on_other_thread(void *arg) {
    vt_profiler *p = arg;
    char *id = NULL;
    vt_result rc = vt_profiler_end(p, "op-777", &id);
    char *msg = vt_test_last_message();
    int ok = rc == VT_NOT_FOUND && vt_last_error_code() == VT_NOT_FOUND && strstr(msg, "op-777");
    free(msg);
    return ok ? (void *)1 : NULL;
}

int main(void) {
    vt_profiler *p = NULL;
    CHECK_RC(vt_profiler_new(NULL, &p), VT_OK, "new");

    /* A failure: the code and the message. */
    CHECK_RC(vt_profiler_end(p, "op-123", NULL), VT_NOT_FOUND, "end unknown id fails");
    CHECK(vt_last_error_code() == VT_NOT_FOUND, "last error code is NOT_FOUND");
    size_t needed = 0;
    CHECK_RC(vt_last_error_message(NULL, 0, &needed), VT_BUFFER_TOO_SMALL, "size query");
    char *msg = malloc(needed);
    CHECK_RC(vt_last_error_message(msg, needed, &needed), VT_OK, "exact size fits");
    CHECK(strlen(msg) + 1 == needed, "needed counts the NUL");
    CHECK(strcmp(msg, "not found: unknown operation id 'op-123'") == 0, "the whole message");

    /* A short buffer: truncated, NUL-terminated, BUFFER_TOO_SMALL, message kept for a retry. */
    char small[10];
    memset(small, 'x', sizeof small);
    size_t needed2 = 0;
    CHECK_RC(vt_last_error_message(small, sizeof small, &needed2), VT_BUFFER_TOO_SMALL,
             "short buffer");
    CHECK(needed2 == needed, "needed is the full size");
    CHECK(strcmp(small, "not found") == 0, "truncated to len - 1 bytes plus NUL");
    CHECK(vt_last_error_code() == VT_NOT_FOUND, "reading the message kept the last error");
    char *again = vt_test_last_message();
    CHECK(strcmp(again, msg) == 0, "the message can be read again");
    free(again);
    CHECK_RC(vt_last_error_message(small, 0, NULL), VT_BUFFER_TOO_SMALL, "len 0");

    /* Truncation never splits a UTF-8 character. */
    char *id = NULL;
    CHECK_RC(vt_profiler_end(p, "op-\xc3\xa9\xc3\xa9", NULL), VT_NOT_FOUND, "a UTF-8 id");
    /* "not found: unknown operation id 'op-" is 36 bytes; then two 2-byte characters. */
    char cut[38];
    CHECK_RC(vt_last_error_message(cut, sizeof cut, NULL), VT_BUFFER_TOO_SMALL, "cut mid-char");
    CHECK(strlen(cut) == 36, "cut before the split character");

    /* A later success keeps the last error (errno-like). */
    CHECK_RC(vt_profiler_start(p, "ok", NULL, &id), VT_OK, "a success");
    CHECK(vt_last_error_code() == VT_NOT_FOUND, "success does not clear the last error");

    /* A newer failure replaces it. */
    CHECK_RC(vt_profiler_start(p, NULL, NULL, &id), VT_NULL_ARGUMENT, "NULL name");
    CHECK(vt_last_error_code() == VT_NULL_ARGUMENT, "the newer error replaced it");
    CHECK_MSG_HAS("argument 'name' is NULL", "NULL message names the argument");
    CHECK_RC(vt_profiler_start(p, VT_BAD_UTF8, NULL, &id), VT_INVALID_UTF8, "bad UTF-8");
    CHECK_MSG_HAS("offset 1", "UTF-8 message gives the offset");

    /* Per thread: another thread's failure is not seen here. */
    pthread_t t;
    void *thread_ok = NULL;
    CHECK(pthread_create(&t, NULL, fail_on_other_thread, p) == 0, "thread started");
    pthread_join(t, &thread_ok);
    CHECK(thread_ok != NULL, "the other thread saw its own error");
    CHECK(vt_last_error_code() == VT_INVALID_UTF8, "this thread's error is unchanged");

    free(msg);
    vt_string_free(id);
    vt_profiler_free(p);
    return vt_test_done();
}
