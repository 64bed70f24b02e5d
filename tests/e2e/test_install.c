/* tests/e2e/test_install.c — `cmake --install` of this build works for programs outside the
 * repository: tests/e2e/install_check.sh installs into a scratch prefix and builds and runs
 * consumers through pkg-config (shared and --static) and CMake's find_package(born). Skips when
 * cmake or pkg-config is missing. */
#define _XOPEN_SOURCE 700 /* nftw */

#include "bn_test.h"

#include "born/info.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Runs a shell command, returning its exit code and its stdout+stderr (caller frees). */
static int run_capture(const char *cmd, char **output)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen failed");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    cr_assert_not_null(out);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) fwrite(chunk, 1, n, out);
    fclose(out);
    int status = pclose(p);
    *output = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(install, installed_born_builds_and_runs_pkgconfig_and_cmake_consumers, .timeout = 300)
{
    char work[] = "/tmp/born-install-XXXXXX";
    cr_assert_not_null(mkdtemp(work));

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/e2e/install_check.sh' '%s' '%s' %d 2>&1",
             BORN_SOURCE_DIR, BORN_BINARY_DIR, work, bn_build_info_get().sanitize ? 1 : 0);
    char *output = NULL;
    int rc = run_capture(cmd, &output);
    nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

    if (rc == 77) {
        cr_log_warn("%s", output);
        free(output);
        cr_skip("cmake or pkg-config is not installed");
    }
    if (rc != 0) {
        cr_log_error("%s", output); /* logged and freed first: a failed assert would leak it */
        free(output);
        cr_assert_fail("install_check.sh failed (exit %d); its output is above", rc);
    }
    char want[64];
    snprintf(want, sizeof want, "born %s: sum 6\n", bn_version());
    const char *ways[] = {"pkg-config consumer: ", "static consumer: ", "cmake consumer: "};
    for (int i = 0; i < 3; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s%s", ways[i], want);
        if (!strstr(output, line)) cr_log_error("no \"%s\" in:\n%s", line, output);
        cr_expect(strstr(output, line) != NULL, "consumer output line: %s", line);
    }
    free(output);
}
