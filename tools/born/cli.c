/* tools/born/cli.c — option parsing for the born subcommands: flags, options with values
 * ("--x N" or "--x=N"), "--" to end options, help text, and usage errors that suggest the
 * nearest known option. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt help_opt = {"--help", "-h", NULL, "show this help and exit"};

int cli_usage_error(const char *help_cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("born: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '%s --help' for usage.\n", help_cmd);
    return CLI_EXIT_USAGE;
}

/* ---- edit distance ------------------------------------------------------------------------ */

#define CLI_MAX_WORD 64

static int min3(int a, int b, int c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

/* Optimal string alignment distance: Levenshtein plus the swap of two adjacent characters,
 * the commonest typo ("--jsno"). Words longer than CLI_MAX_WORD are not compared. */
static int edit_distance(const char *s, const char *t)
{
    int n = (int)strlen(s), m = (int)strlen(t);
    if (n > CLI_MAX_WORD || m > CLI_MAX_WORD) return CLI_MAX_WORD * 2;
    int d[CLI_MAX_WORD + 1][CLI_MAX_WORD + 1];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= m; j++) {
            int cost = s[i - 1] != t[j - 1];
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && s[i - 1] == t[j - 2] && s[i - 2] == t[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    }
    return d[n][m];
}

static const char *skip_dashes(const char *s)
{
    while (*s == '-') s++;
    return s;
}

const char *cli_suggest(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = CLI_MAX_WORD * 2;
    const char *w = skip_dashes(word);
    for (int i = 0; i < n; i++) {
        const char *c = skip_dashes(candidates[i]);
        int d = edit_distance(w, c);
        /* a plausible typo: at most 2 edits, and fewer than half the letters changed */
        int len = (int)strlen(c);
        if (d <= 2 && 2 * d < len && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ---- option tables ------------------------------------------------------------------------ */

static int count_opts(const cli_cmd *cmd)
{
    int n = 0;
    while (cmd->opts && cmd->opts[n].name) n++;
    return n;
}

static int find_opt(const cli_cmd *cmd, const char *name, size_t len)
{
    for (int i = 0; i < count_opts(cmd); i++) {
        const cli_opt *o = &cmd->opts[i];
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return i;
        if (o->short_name && strlen(o->short_name) == len && strncmp(o->short_name, name, len) == 0)
            return i;
    }
    return -1;
}

bool cli_has(const cli_cmd *cmd, const cli_args *args, const char *name)
{
    return cli_value(cmd, args, name) != NULL;
}

const char *cli_value(const cli_cmd *cmd, const cli_args *args, const char *name)
{
    int i = find_opt(cmd, name, strlen(name));
    return i < 0 ? NULL : args->values[i];
}

static int unknown_option(const cli_cmd *cmd, const char *help_cmd, const char *arg, size_t len)
{
    const char *names[CLI_MAX_OPTS + 1];
    int n = 0;
    for (int i = 0; i < count_opts(cmd); i++) names[n++] = cmd->opts[i].name;
    names[n++] = help_opt.name;

    char word[CLI_MAX_WORD + 1];
    snprintf(word, sizeof word, "%.*s", (int)(len < CLI_MAX_WORD ? len : CLI_MAX_WORD), arg);
    const char *hint = cli_suggest(word, names, n);
    if (hint)
        return cli_usage_error(help_cmd, "unknown option '%.*s' for '%s' (did you mean '%s'?)",
                               (int)len, arg, help_cmd, hint);
    return cli_usage_error(help_cmd, "unknown option '%.*s' for '%s'", (int)len, arg, help_cmd);
}

/* Handles argv[*i], an option; may consume argv[*i + 1] as its value. */
static int parse_option(const cli_cmd *cmd, const char *help_cmd, int argc, char **argv, int *i,
                        cli_args *out)
{
    const char *arg = argv[*i];
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    int k = find_opt(cmd, arg, len);
    if (k < 0) return unknown_option(cmd, help_cmd, arg, len);

    const cli_opt *o = &cmd->opts[k];
    if (!o->value) {
        if (eq)
            return cli_usage_error(help_cmd, "option '%s' for '%s' takes no value (got '%s')",
                                   o->name, help_cmd, eq + 1);
        out->values[k] = "";
        return -1;
    }
    if (eq) {
        out->values[k] = eq + 1;
    } else if (*i + 1 < argc) {
        out->values[k] = argv[++*i];
    } else {
        return cli_usage_error(help_cmd, "option '%s' for '%s' needs a value (%s %s)", o->name,
                               help_cmd, o->name, o->value);
    }
    return -1;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out)
{
    char help_cmd[CLI_MAX_WORD + 8];
    snprintf(help_cmd, sizeof help_cmd, "born %s", cmd->name);
    memset(out, 0, sizeof *out);
    if (count_opts(cmd) > CLI_MAX_OPTS) {
        fprintf(stderr, "born: internal error: '%s' declares too many options\n", help_cmd);
        return CLI_EXIT_FAILURE;
    }

    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (!options_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            cli_print_cmd_help(cmd, stdout);
            return CLI_EXIT_OK;
        } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            int rc = parse_option(cmd, help_cmd, argc, argv, &i, out);
            if (rc >= 0) return rc;
        } else if (out->npositional < cmd->max_positional &&
                   out->npositional < CLI_MAX_POSITIONAL) {
            out->positional[out->npositional++] = arg;
        } else {
            return cli_usage_error(help_cmd, "unexpected argument '%s' for '%s'", arg, help_cmd);
        }
    }
    return -1;
}

static void print_opt(const cli_opt *o, FILE *f)
{
    char left[96];
    int n = snprintf(left, sizeof left, "%s%s%s", o->short_name ? o->short_name : "",
                     o->short_name ? ", " : "    ", o->name);
    if (o->value && n > 0 && (size_t)n < sizeof left)
        snprintf(left + n, sizeof left - (size_t)n, " %s", o->value);
    fprintf(f, "  %-22s %s\n", left, o->help);
}

void cli_print_cmd_help(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: born %s [options]%s%s\n\n", cmd->name, cmd->args_usage[0] ? " " : "",
            cmd->args_usage);
    fprintf(f, "%s\n\noptions:\n", cmd->description);
    for (int i = 0; i < count_opts(cmd); i++) print_opt(&cmd->opts[i], f);
    print_opt(&help_opt, f);
}

bool cli_opt_int(const cli_cmd *cmd, const cli_args *a, const char *help_cmd, const char *name,
                 int64_t lo, int64_t hi, int64_t *v)
{
    const char *s = cli_value(cmd, a, name);
    if (!s) return true;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < lo || x > hi) {
        cli_usage_error(help_cmd, "%s must be an integer in [%lld, %lld], got '%s'", name,
                        (long long)lo, (long long)hi, s);
        return false;
    }
    *v = x;
    return true;
}

bool cli_opt_real(const cli_cmd *cmd, const cli_args *a, const char *help_cmd, const char *name,
                  double lo, double hi, bool hi_open, double *v)
{
    const char *s = cli_value(cmd, a, name);
    if (!s) return true;
    char *end;
    double x = strtod(s, &end);
    if (!*s || *end || !isfinite(x) || x < lo || x > hi || (hi_open && x >= hi)) {
        cli_usage_error(help_cmd, "%s must be a number in [%g, %g%s, got '%s'", name, lo, hi,
                        hi_open ? ")" : "]", s);
        return false;
    }
    *v = x;
    return true;
}
