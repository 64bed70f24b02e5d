/* tests/e2e/test_cli.c — the born command as a user meets it: runs the built binary (CTest
 * passes its path in BORN_BIN; without it the tests skip) and checks exit codes, help, the text
 * and JSON of `born info` against /proc/cpuinfo, and the "did you mean" hints. The JSON writer's
 * escaping is tested directly by compiling tools/born/json.c into this test. */
#include "bn_test.h"
#include "json_dom.h"

#include "born/born.h"

#include "../../tools/born/json.c"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- running the binary ---------------------------------------------------------------- */

typedef struct run_result {
    int exit_code; /* -1 when it did not exit normally */
    char *out, *err;
} run_result;

static const char *born_bin(void)
{
    const char *bin = getenv("BORN_BIN");
    if (!bin || !*bin) cr_skip("BORN_BIN is not set: the born binary was not built");
    return bin;
}

static int temp_file(void)
{
    char path[] = "/tmp/born-cli-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp failed");
    unlink(path);
    return fd;
}

static char *slurp_fd(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    cr_assert_geq(size, 0);
    char *buf = malloc((size_t)size + 1);
    cr_assert_not_null(buf);
    ssize_t got = pread(fd, buf, (size_t)size, 0);
    cr_assert_eq(got, size);
    buf[size] = '\0';
    close(fd);
    return buf;
}

/* Copies environ with one "NAME=value" entry set (replacing an existing one) when set != NULL. */
static char **env_with(const char *set)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof(char *));
    cr_assert_not_null(env);
    size_t name_len = set ? strcspn(set, "=") + 1 : 0, k = 0;
    for (size_t i = 0; i < n; i++)
        if (!set || strncmp(environ[i], set, name_len) != 0) env[k++] = environ[i];
    if (set) env[k++] = (char *)set;
    env[k] = NULL;
    return env;
}

/* Runs born with args (NULL-terminated, not counting argv[0]) and an optional environment
 * override; stdout and stderr go to separate files, so output size cannot deadlock a pipe.
 * stdout_path, when given, replaces stdout's file (r.out is then empty). */
static run_result run_born_full(const char *set_env, const char *stdout_path,
                                const char *const *args)
{
    const char *bin = born_bin();
    char *argv[32] = {(char *)bin};
    int argc = 1;
    for (; args[argc - 1]; argc++) {
        cr_assert_lt(argc, 31);
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;

    int out_fd = stdout_path ? open(stdout_path, O_WRONLY) : temp_file(), err_fd = temp_file();
    cr_assert_geq(out_fd, 0, "cannot open the file for stdout");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
    char **env = env_with(set_env);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", bin, strerror(rc));

    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char *out = stdout_path ? strdup("") : slurp_fd(out_fd);
    if (stdout_path) close(out_fd);
    run_result r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, slurp_fd(err_fd)};
    return r;
}

static run_result run_born_env(const char *set_env, const char *const *args)
{
    return run_born_full(set_env, NULL, args);
}

#define RUN_BORN(...) run_born_env(NULL, (const char *const[]){__VA_ARGS__, NULL})

static void run_result_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* ---- born info ----------------------------------------------------------------------------- */

Test(cli, info_prints_version_build_features_and_backends)
{
    run_result r = RUN_BORN("info");
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert_str_empty(r.err);
    char want[64];
    snprintf(want, sizeof want, "born %s\n", bn_version());
    cr_assert(strncmp(r.out, want, strlen(want)) == 0, "first line: %s", r.out);
    cr_assert(strstr(r.out, bn_build_info_get().compiler), "%s", r.out);
    cr_assert(strstr(r.out, "  features "), "%s", r.out);
    cr_assert(strstr(r.out, "  threads "), "%s", r.out);
    cr_assert(strstr(r.out, "cpu     available"), "%s", r.out);
    cr_assert(strstr(r.out, "cuda    not available: "), "%s", r.out);
    cr_assert(strstr(r.out, "vulkan  not available: "), "%s", r.out);

    bn_cpu_features f = bn_cpu_features_detect();
    for (int i = 0; i < BN_CPU_FEATURE_COUNT; i++) {
        const char *name = bn_cpu_feature_name(i);
        cr_expect_eq(bnt_has_word(r.out, name), bn_cpu_feature_has(&f, i), "feature %s in:\n%s", name,
                     r.out);
    }
    run_result_free(&r);
}

static jv parse_info_json(const char *set_env)
{
    run_result r = run_born_env(set_env, (const char *const[]){"info", "--json", NULL});
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert_str_empty(r.err);
    size_t len = strlen(r.out);
    cr_assert(len > 1 && r.out[len - 1] == '\n', "ends with a newline");
    cr_assert_eq(strchr(r.out, '\n'), r.out + len - 1, "one line: %s", r.out);
    jv root;
    const char *error = NULL;
    size_t pos = 0;
    cr_assert(jv_parse(r.out, &root, &error, &pos), "invalid JSON (%s at byte %zu): %s", error, pos,
              r.out);
    run_result_free(&r);
    cr_assert_eq(root.kind, JV_OBJECT);
    return root;
}

static const jv *expect_member(const jv *obj, const char *key, jv_kind kind)
{
    const jv *v = jv_get(obj, key);
    cr_assert_not_null(v, "no member \"%s\"", key);
    cr_assert_eq(v->kind, kind, "member \"%s\" has kind %d, not %d", key, v->kind, kind);
    return v;
}

Test(cli, info_json_is_one_valid_object_with_build_cpu_backends_threads)
{
    jv root = parse_info_json(NULL);
    cr_assert_str_eq(expect_member(&root, "version", JV_STRING)->string, bn_version());

    bn_build_info b = bn_build_info_get();
    const jv *build = expect_member(&root, "build", JV_OBJECT);
    cr_assert_str_eq(expect_member(build, "compiler", JV_STRING)->string, b.compiler);
    cr_assert_str_eq(expect_member(build, "type", JV_STRING)->string, b.build_type);
    cr_assert_eq(expect_member(build, "openmp", JV_BOOL)->boolean, b.openmp);
    cr_assert_eq(expect_member(build, "sanitize", JV_BOOL)->boolean, b.sanitize);

    const jv *cpu = expect_member(&root, "cpu", JV_OBJECT);
    const jv *model = jv_get(cpu, "model");
    cr_assert(model && (model->kind == JV_STRING || model->kind == JV_NULL));
    cr_assert_eq(expect_member(cpu, "logical_cores", JV_NUMBER)->number,
                 (double)sysconf(_SC_NPROCESSORS_ONLN));
    const jv *features = expect_member(cpu, "features", JV_ARRAY);
    for (int i = 0; i < features->n; i++) cr_assert_eq(features->items[i].kind, JV_STRING);

    const jv *backends = expect_member(&root, "backends", JV_ARRAY);
    cr_assert_eq(backends->n, 3);
    const char *names[] = {"cpu", "cuda", "vulkan"};
    for (int i = 0; i < 3; i++) {
        const jv *be = &backends->items[i];
        cr_assert_str_eq(expect_member(be, "name", JV_STRING)->string, names[i]);
        bool available = expect_member(be, "available", JV_BOOL)->boolean;
        cr_assert_eq(available, i == 0, "%s available: %d", names[i], available);
        if (!available) cr_assert(strlen(expect_member(be, "reason", JV_STRING)->string) > 0);
    }
    cr_assert_geq(expect_member(&root, "threads", JV_NUMBER)->number, 1);
    jv_free(&root);
}

Test(cli, info_json_features_agree_with_proc_cpuinfo)
{
    char *flags = bnt_cpuinfo_flags();
    if (!flags) cr_skip("no x86 flags line in /proc/cpuinfo");
    jv root = parse_info_json(NULL);
    const jv *features = jv_get(jv_get(&root, "cpu"), "features");
    cr_assert_not_null(features);
    static const char *const x86[] = {"sse4_2",      "avx",      "avx2",        "fma",
                                      "f16c",        "avx512f",  "avx512bw",    "avx512vl",
                                      "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"};
    for (size_t i = 0; i < sizeof x86 / sizeof x86[0]; i++)
        cr_expect_eq(jv_array_has_string(features, x86[i]), bnt_has_word(flags, x86[i]),
                     "%s: born %d, /proc/cpuinfo %d", x86[i], jv_array_has_string(features, x86[i]),
                     bnt_has_word(flags, x86[i]));
    cr_expect(!jv_array_has_string(features, "neon") && !jv_array_has_string(features, "sve"));
    jv_free(&root);
    free(flags);
}

Test(cli, info_json_threads_follow_omp_num_threads)
{
    if (!bn_build_info_get().openmp) cr_skip("built without OpenMP: always 1 thread");
    jv root = parse_info_json("OMP_NUM_THREADS=3");
    cr_assert_eq(expect_member(&root, "threads", JV_NUMBER)->number, 3);
    jv_free(&root);
}

/* ---- help and version ------------------------------------------------------------------------ */

Test(cli, version_prints_the_library_version)
{
    const char *flags[] = {"--version", "-V"};
    for (int i = 0; i < 2; i++) {
        run_result r = RUN_BORN(flags[i]);
        cr_assert_eq(r.exit_code, 0);
        char want[64];
        snprintf(want, sizeof want, "born %s\n", bn_version());
        cr_assert_str_eq(r.out, want);
        run_result_free(&r);
    }
}

/* The command names listed under "commands:" in `born --help`, so every command added later
 * gets its --help checked without touching this test. */
static int listed_commands(const char *help, char names[][32], int max)
{
    const char *p = strstr(help, "\ncommands:\n");
    cr_assert_not_null(p, "no commands section in:\n%s", help);
    p += strlen("\ncommands:\n");
    int n = 0;
    while (*p == ' ' && n < max) {
        cr_assert_eq(sscanf(p, " %31s", names[n]), 1);
        n++;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    return n;
}

Test(cli, help_lists_commands_and_every_command_has_help)
{
    run_result r = RUN_BORN("--help");
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "usage: born <command> [options]"), "%s", r.out);
    char names[32][32];
    int n = listed_commands(r.out, names, 32);
    cr_assert_geq(n, 1);
    cr_assert_str_eq(names[0], "info");
    run_result_free(&r);

    for (int i = 0; i < n; i++) {
        const char *forms[][2] = {{names[i], "--help"}, {names[i], "-h"}, {"help", names[i]}};
        for (int k = 0; k < 3; k++) {
            run_result h = RUN_BORN(forms[k][0], forms[k][1]);
            cr_assert_eq(h.exit_code, 0, "born %s %s: %s", forms[k][0], forms[k][1], h.err);
            char usage[96];
            snprintf(usage, sizeof usage, "usage: born %.31s", names[i]);
            cr_assert(strncmp(h.out, usage, strlen(usage)) == 0, "%s", h.out);
            cr_assert(strstr(h.out, "--help"), "%s", h.out);
            run_result_free(&h);
        }
    }
}

Test(cli, info_help_documents_json)
{
    run_result r = RUN_BORN("info", "--help");
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "--json"), "%s", r.out);
    run_result_free(&r);
}

/* ---- usage errors: exit code 2, a message on stderr, nothing on stdout --------------------- */

static void expect_usage_error(run_result r, const char *message)
{
    cr_assert_eq(r.exit_code, 2, "exit %d, stderr: %s", r.exit_code, r.err);
    cr_assert_str_empty(r.out);
    cr_assert(strstr(r.err, message), "stderr lacks \"%s\":\n%s", message, r.err);
    run_result_free(&r);
}

Test(cli, unknown_option_exits_2_with_a_hint)
{
    expect_usage_error(RUN_BORN("info", "--jsn"),
                       "born: unknown option '--jsn' for 'born info' (did you mean '--json'?)\n"
                       "Run 'born info --help' for usage.");
    expect_usage_error(RUN_BORN("info", "--jsno"), "(did you mean '--json'?)");
    expect_usage_error(RUN_BORN("info", "--hepl"), "(did you mean '--help'?)");
}

Test(cli, unknown_option_far_from_any_gives_no_hint)
{
    run_result r = RUN_BORN("info", "--frobnicate");
    cr_assert(!strstr(r.err, "did you mean"), "%s", r.err);
    expect_usage_error(r, "born: unknown option '--frobnicate' for 'born info'");
}

Test(cli, unknown_command_exits_2_with_a_hint)
{
    expect_usage_error(RUN_BORN("inf"), "born: unknown command 'inf' (did you mean 'info'?)");
    expect_usage_error(RUN_BORN("ifno"), "(did you mean 'info'?)");
    run_result r = RUN_BORN("train-everything");
    cr_assert(!strstr(r.err, "did you mean"), "%s", r.err);
    expect_usage_error(r, "born: unknown command 'train-everything'");
}

Test(cli, unknown_global_option_exits_2)
{
    expect_usage_error(RUN_BORN("--verison"),
                       "unknown option '--verison' (did you mean '--version'?)");
    expect_usage_error(RUN_BORN("--json"), "unknown option '--json'");
}

Test(cli, no_command_prints_usage_and_exits_2)
{
    run_result r = run_born_env(NULL, (const char *const[]){NULL});
    cr_assert_eq(r.exit_code, 2);
    cr_assert_str_empty(r.out);
    cr_assert(strstr(r.err, "usage: born <command>"), "%s", r.err);
    run_result_free(&r);
}

Test(cli, flag_given_a_value_or_stray_argument_exits_2)
{
    expect_usage_error(RUN_BORN("info", "--json=yes"),
                       "option '--json' for 'born info' takes no value (got 'yes')");
    expect_usage_error(RUN_BORN("info", "extra"), "unexpected argument 'extra' for 'born info'");
    expect_usage_error(RUN_BORN("info", "--", "--json"),
                       "unexpected argument '--json' for 'born info'");
    expect_usage_error(RUN_BORN("help", "inf"), "unknown command 'inf' (did you mean 'info'?)");
}

Test(cli, output_that_cannot_be_written_exits_1)
{
    if (access("/dev/full", W_OK) != 0) cr_skip("no /dev/full here");
    run_result r = run_born_full(NULL, "/dev/full", (const char *const[]){"info", NULL});
    cr_assert_eq(r.exit_code, 1, "exit %d", r.exit_code);
    cr_assert(strstr(r.err, "born: could not write the output"), "%s", r.err);
    run_result_free(&r);
}

/* ---- the JSON writer, directly ------------------------------------------------------------- */

static char *write_json_string(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    json_writer w = jw_writer_make(f);
    jw_begin_array(&w);
    jw_string(&w, s);
    jw_string(&w, NULL);
    jw_int(&w, -7);
    jw_bool(&w, false);
    jw_begin_object(&w);
    jw_end_object(&w);
    jw_end_array(&w);
    fclose(f);
    return buf;
}

Test(cli, json_writer_escapes_quotes_controls_and_bad_utf8)
{
    /* quote, backslash, newline, tab, a raw control byte, DEL, valid 2- and 3-byte UTF-8, a
     * stray continuation byte, a truncated sequence, an overlong '/' and a UTF-16 surrogate */
    const char *in = "a\"b\\c\nd\te\x01"
                     "f\x7f"
                     "\xc3\xa9\xe2\x82\xac"
                     "\x80"
                     "\xe2\x82"
                     "\xc0\xaf"
                     "\xed\xa0\x80"
                     "z";
    char *out = write_json_string(in);
    jv root;
    const char *error = NULL;
    size_t pos = 0;
    cr_assert(jv_parse(out, &root, &error, &pos), "invalid JSON (%s at %zu): %s", error, pos, out);
    cr_assert_eq(root.kind, JV_ARRAY);
    cr_assert_eq(root.n, 5);
    const char *want = "a\"b\\c\nd\te\x01"
                       "f\x7f"
                       "\xc3\xa9\xe2\x82\xac"
                       "\xef\xbf\xbd"
                       "\xef\xbf\xbd\xef\xbf\xbd"
                       "\xef\xbf\xbd\xef\xbf\xbd"
                       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                       "z";
    cr_assert_str_eq(root.items[0].string, want, "wrote %s", out);
    cr_assert_eq(root.items[1].kind, JV_NULL);
    cr_assert_eq(root.items[2].number, -7);
    cr_assert_eq(root.items[3].kind, JV_BOOL);
    cr_assert_eq(root.items[4].kind, JV_OBJECT);
    cr_assert_eq(root.items[4].n, 0);
    jv_free(&root);
    free(out);
}

Test(cli, json_checker_rejects_invalid_json)
{
    /* the checker the tests above rely on must be strict */
    const char *bad[] = {"{\"a\":1,}", "[1 2]", "{\"a\":1}{", "\"tab\there\"",
                         "01",         "{a:1}", "[\"\\x\"]",  "{\"a\":1,\"a\":2}",
                         "[tru]",      "",      "[1.]",       "\"\\ud800\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jv v;
        const char *error = NULL;
        size_t pos = 0;
        cr_expect(!jv_parse(bad[i], &v, &error, &pos), "accepted: %s", bad[i]);
    }
}
