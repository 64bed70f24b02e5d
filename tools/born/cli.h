/* tools/born/cli.h — what the born command's subcommands share: the command table entry, option
 * parsing with "did you mean" hints, help text and exit codes. A subcommand declares its options
 * as a table and gets --help, usage errors and suggestions for free. */
#ifndef BORN_CLI_H
#define BORN_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: like most Unix tools, 2 means the command line was wrong. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

#define CLI_MAX_OPTS 48
#define CLI_MAX_POSITIONAL 16

/* One option: a flag ("--json") or, when value names its argument, an option taking a value
 * ("--threads N", also written "--threads=N"). */
typedef struct cli_opt {
    const char *name;       /* with the dashes: "--json" */
    const char *short_name; /* "-j", or NULL */
    const char *value;      /* NULL for a flag; the placeholder shown in help ("N") otherwise */
    const char *help;
} cli_opt;

/* What the parser found: per option (same index as the command's table) NULL when absent, the
 * value when given one, "" for a flag that was given. */
typedef struct cli_args {
    const char *values[CLI_MAX_OPTS];
    const char *positional[CLI_MAX_POSITIONAL];
    int npositional;
} cli_args;

typedef struct cli_cmd cli_cmd;
struct cli_cmd {
    const char *name;        /* "info" */
    const char *summary;     /* one line for `born --help` */
    const char *args_usage;  /* after "born <name> [options]": "" or "<file>" */
    const char *description; /* a paragraph for `born <name> --help` (may hold newlines) */
    const cli_opt *opts;     /* ends with an entry whose name is NULL; --help is implicit */
    int max_positional;      /* how many positional arguments the command accepts */
    int (*run)(const cli_cmd *cmd, const cli_args *args);
};

/* Parses argv[1..argc-1] (argv[0] is the command's name) against cmd's options. Returns -1 when
 * the command should run, CLI_EXIT_OK after printing help for --help, CLI_EXIT_USAGE after
 * printing a usage error to stderr. */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out);

/* The flag or option named name (as in the table, "--json") was given / its value (NULL when
 * absent). */
bool cli_has(const cli_cmd *cmd, const cli_args *args, const char *name);
const char *cli_value(const cli_cmd *cmd, const cli_args *args, const char *name);

void cli_print_cmd_help(const cli_cmd *cmd, FILE *f);

/* The candidate closest to word by edit distance (insert, delete, substitute, swap adjacent),
 * or NULL when none is close enough to be a plausible typo. */
const char *cli_suggest(const char *word, const char *const *candidates, int n);

/* Prints "born: <message>" and a pointer to the help to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *help_cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Numeric options: absent leaves *v unchanged and returns true; a value that is not a number in
 * [lo, hi] (hi_open: [lo, hi)) is a usage error naming the option, the range and the value
 * (printed with help_cmd's "Run ... --help" hint) and returns false. */
bool cli_opt_int(const cli_cmd *cmd, const cli_args *a, const char *help_cmd, const char *name,
                 int64_t lo, int64_t hi, int64_t *v);
bool cli_opt_real(const cli_cmd *cmd, const cli_args *a, const char *help_cmd, const char *name,
                  double lo, double hi, bool hi_open, double *v);

/* The subcommands, one file each (cmd_<name>.c). main.c lists them in its table. */
extern const cli_cmd cli_cmd_info, cli_cmd_train, cli_cmd_eval, cli_cmd_inspect, cli_cmd_convert,
    cli_cmd_generate, cli_cmd_train_gpt;
/* `born train --model gpt ...` is its own command (cmd_train_gpt.c): true when argv asks for it. */
bool cli_train_is_gpt(int argc, char **argv);

#endif
