/* tests/common/bn_run.c — runs the built born binary for end-to-end tests (see bn_test.h). */
#include "bn_test.h"

#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int temp_file(void)
{
    char path[] = "/tmp/born-e2e-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

static char *slurp_fd(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)size + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(fd);
    return buf;
}

bnt_run_result bnt_run_born(const char *const *args)
{
    const char *bin = getenv("BORN_BIN");
    if (!bin || !*bin) cr_skip("BORN_BIN is not set: the born binary was not built");
    char *argv[40] = {(char *)bin};
    int argc = 1;
    for (; args[argc - 1]; argc++) {
        cr_assert_lt(argc, 39, "too many arguments");
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;
    int out_fd = temp_file(), err_fd = temp_file();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return (bnt_run_result){WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp_fd(out_fd),
                            slurp_fd(err_fd)};
}

void bnt_run_result_free(bnt_run_result *r)
{
    free(r->out);
    free(r->err);
}
