/* The ABI's own pieces: vt_version, vt_result_code, vt_last_error_* with no error yet,
 * vt_string_free(NULL). Error paths of vt_last_error_message are in test_errors.c. */
#include "vt_test.h"

int main(void) {
    const char *v = vt_version();
    CHECK(v != NULL && strlen(v) >= 5, "vt_version returns a version string");
    CHECK(strchr(v, '.') != NULL, "vt_version looks like major.minor.patch");

    CHECK(strcmp(vt_result_code(VT_OK), "OK") == 0, "VT_OK is OK");
    CHECK(strcmp(vt_result_code(VT_NOT_FOUND), "NOT_FOUND") == 0, "VT_NOT_FOUND code");
    CHECK(strcmp(vt_result_code(VT_CYCLE), "CYCLE") == 0, "VT_CYCLE code");
    CHECK(strcmp(vt_result_code(VT_TASK_FAILED), "TASK_FAILED") == 0, "VT_TASK_FAILED code");
    CHECK(strcmp(vt_result_code(VT_PARSE), "PARSE") == 0, "VT_PARSE code");
    CHECK(strcmp(vt_result_code(VT_INTERNAL), "INTERNAL") == 0, "VT_INTERNAL code");
    CHECK(strcmp(vt_result_code(VT_WORKTREE_LOCKED), "WORKTREE_LOCKED") == 0, "VT_WORKTREE_LOCKED code");
    CHECK(strcmp(vt_result_code(VT_WORKTREE_DIRTY), "WORKTREE_DIRTY") == 0, "VT_WORKTREE_DIRTY code");
    CHECK(strcmp(vt_result_code(VT_UNSAFE_PATH), "UNSAFE_PATH") == 0, "VT_UNSAFE_PATH code");
    CHECK(strcmp(vt_result_code(VT_NULL_ARGUMENT), "NULL_ARGUMENT") == 0, "VT_NULL_ARGUMENT code");
    CHECK(strcmp(vt_result_code(VT_INVALID_UTF8), "INVALID_UTF8") == 0, "VT_INVALID_UTF8 code");
    CHECK(strcmp(vt_result_code(VT_BUFFER_TOO_SMALL), "BUFFER_TOO_SMALL") == 0,
          "VT_BUFFER_TOO_SMALL code");
    CHECK(strcmp(vt_result_code(VT_PANIC), "PANIC") == 0, "VT_PANIC code");
    CHECK(strcmp(vt_result_code(9999), "UNKNOWN") == 0, "an out-of-range number is UNKNOWN");
    CHECK(strcmp(vt_result_code(19), "UNKNOWN") == 0, "a gap number is UNKNOWN");

    /* No failure on this thread yet. */
    CHECK(vt_last_error_code() == VT_OK, "no last error at start");
    char buf[8] = "xxxxxxx";
    size_t needed = 0;
    CHECK_RC(vt_last_error_message(buf, sizeof buf, &needed), VT_OK, "empty message fits");
    CHECK(buf[0] == '\0' && needed == 1, "empty message is \"\" and needs 1 byte");
    CHECK_RC(vt_last_error_message(NULL, 0, &needed), VT_BUFFER_TOO_SMALL, "size query");
    CHECK_RC(vt_last_error_message(NULL, 4, NULL), VT_NULL_ARGUMENT, "NULL buf with len > 0");
    CHECK(vt_last_error_code() == VT_OK, "vt_last_error_message never sets the last error");

    vt_string_free(NULL);
    CHECK(1, "vt_string_free(NULL) is a no-op");
    return vt_test_done();
}
