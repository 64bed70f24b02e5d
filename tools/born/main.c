/* tools/born/main.c — the born command: `born <command> [options]`. Each subcommand is one entry
 * of the table below and one file cmd_<name>.c; main only routes, handles the global --help and
 * --version, and turns unknown commands into exit code 2 with a "did you mean" hint. */
#include "cli.h"
#include "gpt_common.h" /* cli_eval_is_gpt, cli_cmd_eval_gpt */

#include "born/info.h"

#include <string.h>

/* Adding a subcommand is one line here (and its cmd_<name>.c). */
static const cli_cmd *const commands[] = {
    &cli_cmd_info,
    &cli_cmd_train,
    &cli_cmd_eval,
    &cli_cmd_inspect,
    &cli_cmd_convert,
    &cli_cmd_generate,
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void print_main_help(FILE *f)
{
    fprintf(f, "born %s — a machine-learning framework in C\n\n", bn_version());
    fputs("usage: born <command> [options]\n"
          "       born --help | --version\n\n"
          "commands:\n",
          f);
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\noptions:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  print the version and exit\n\n"
          "Run 'born <command> --help' for a command's options.\n",
          f);
}

static const cli_cmd *find_command(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static int unknown_command(const char *name)
{
    const char *names[NCOMMANDS + 1];
    for (int i = 0; i < NCOMMANDS; i++) names[i] = commands[i]->name;
    names[NCOMMANDS] = "help";
    const char *hint = cli_suggest(name, names, NCOMMANDS + 1);
    if (hint)
        return cli_usage_error("born", "unknown command '%s' (did you mean '%s'?)", name, hint);
    return cli_usage_error("born", "unknown command '%s'", name);
}

static int unknown_global_option(const char *arg)
{
    static const char *const names[] = {"--help", "--version"};
    const char *hint = cli_suggest(arg, names, 2);
    if (hint) return cli_usage_error("born", "unknown option '%s' (did you mean '%s'?)", arg, hint);
    /* `born --json` probably meant a command's option */
    return cli_usage_error("born",
                           "unknown option '%s' (command options go after the command: "
                           "born <command> %s)",
                           arg, arg);
}

static int run_command(const cli_cmd *cmd, int argc, char **argv)
{
    cli_args args;
    if (cmd == &cli_cmd_train && cli_train_is_gpt(argc, argv)) cmd = &cli_cmd_train_gpt;
    if (cmd == &cli_cmd_eval && cli_eval_is_gpt(argc, argv)) cmd = &cli_cmd_eval_gpt;
    int rc = cli_parse(cmd, argc, argv, &args);
    if (rc >= 0) return rc;
    return cmd->run(cmd, &args);
}

/* `born help [command]` */
static int run_help(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 2) return cli_usage_error("born", "'born help' takes one command name");
    const cli_cmd *cmd = find_command(argv[1]);
    if (!cmd) return unknown_command(argv[1]);
    cli_print_cmd_help(cmd, stdout);
    return CLI_EXIT_OK;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        print_main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(first, "--version") == 0 || strcmp(first, "-V") == 0) {
        printf("born %s\n", bn_version());
        return CLI_EXIT_OK;
    }
    if (first[0] == '-') return unknown_global_option(first);
    if (strcmp(first, "help") == 0) return run_help(argc - 1, argv + 1);
    const cli_cmd *cmd = find_command(first);
    if (!cmd) return unknown_command(first);
    return run_command(cmd, argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    int rc = dispatch(argc, argv);
    /* A full disk or a closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "born: could not write the output\n");
        if (rc == CLI_EXIT_OK) rc = CLI_EXIT_FAILURE;
    }
    return rc;
}
