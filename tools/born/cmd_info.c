/* tools/born/cmd_info.c — `born info [--json]`: the version, how this born was built, the CPU it
 * runs on and the SIMD features it found, the backends and whether each can be used, the thread
 * count. Text for people; --json writes the same facts as one JSON object on one line. */
#include "cli.h"
#include "json.h"

#include "born/cuda.h"
#include "born/info.h"

#include <string.h>
#include <unistd.h>

typedef struct backend_status {
    const char *name;
    bool available;
    const char *reason; /* why not, when not available */
} backend_status;

typedef struct machine_info {
    bn_build_info build;
    char cpu_model[256]; /* "" when /proc/cpuinfo has no model name */
    long logical_cores;
    bn_cpu_features features;
    int threads;
    backend_status backends[3];
    int gpus; /* CUDA devices listed in gpu[] */
    struct {
        char name[256];
        bool stats_ok;
        bn_cuda_memory_stats stats;
    } gpu[8];
} machine_info;

/* The "model name" line of /proc/cpuinfo (x86 has one; most ARM kernels do not). */
static void read_cpu_model(char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strcspn(v, "\r\n");
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
        snprintf(out, n, "%.*s", (int)len, v);
        break;
    }
    fclose(f);
}

static backend_status gpu_backend(const char *name, bn_device dev, const char *reason)
{
    bool ok = bn_device_available(dev);
    return (backend_status){name, ok, ok ? NULL : reason};
}

static machine_info gather(void)
{
    machine_info m = {0};
    m.build = bn_build_info_get();
    read_cpu_model(m.cpu_model, sizeof m.cpu_model);
    m.logical_cores = sysconf(_SC_NPROCESSORS_ONLN);
    m.features = bn_cpu_features_detect();
    m.threads = bn_num_threads();
    m.backends[0] = (backend_status){"cpu", true, NULL};
    /* asking for the device count loads the CUDA plugin if there is one */
    const char *cuda_reason = bn_cuda_device_count() > 0 ? NULL : bn_cuda_unavailable_reason();
    m.backends[1] = gpu_backend("cuda", bn_cuda(0), cuda_reason ? cuda_reason : "no CUDA device");
    int n = bn_cuda_device_count();
    m.gpus = n < 8 ? n : 8;
    for (int i = 0; i < m.gpus; i++) {
        if (bn_cuda_device_name(i, m.gpu[i].name, sizeof m.gpu[i].name) != BN_OK)
            snprintf(m.gpu[i].name, sizeof m.gpu[i].name, "? (%s)", bn_error_message());
        m.gpu[i].stats_ok = bn_cuda_memory_stats_get(i, &m.gpu[i].stats) == BN_OK;
    }
    m.backends[2] = gpu_backend("vulkan", bn_vulkan(0),
                                "no Vulkan backend in this build (not implemented yet)");
    return m;
}

static void print_text(const machine_info *m)
{
    const bn_build_info *b = &m->build;
    printf("born %s\n", b->version);
    printf("  build     %s, %s, %s, %s\n", b->compiler, b->build_type,
           b->openmp ? "OpenMP" : "no OpenMP", b->sanitize ? "ASan+UBSan" : "no sanitizers");
    printf("  cpu       %s (%ld logical cores)\n", m->cpu_model[0] ? m->cpu_model : "unknown model",
           m->logical_cores);
    printf("  features ");
    int shown = 0;
    for (int i = 0; i < BN_CPU_FEATURE_COUNT; i++) {
        if (!bn_cpu_feature_has(&m->features, i)) continue;
        printf(" %s", bn_cpu_feature_name(i));
        shown++;
    }
    printf("%s\n", shown ? "" : " none beyond the base ISA");
    printf("  threads   %d\n", m->threads);
    for (int i = 0; i < 3; i++) {
        const backend_status *s = &m->backends[i];
        printf("  %-9s %-7s %s%s\n", i == 0 ? "backends" : "", s->name,
               s->available ? "available" : "not available: ", s->available ? "" : s->reason);
    }
    for (int i = 0; i < m->gpus; i++) {
        printf("  %-9s cuda:%d  %s", i == 0 ? "gpus" : "", i, m->gpu[i].name);
        if (m->gpu[i].stats_ok)
            printf(" (allocator: %.1f MiB reserved, %.1f MiB in use, %llu cudaMalloc calls)",
                   (double)m->gpu[i].stats.reserved / 1048576.0,
                   (double)m->gpu[i].stats.allocated / 1048576.0,
                   (unsigned long long)m->gpu[i].stats.num_device_mallocs);
        printf("\n");
    }
}

static void print_json(const machine_info *m)
{
    json_writer w = jw_writer_make(stdout);
    jw_begin_object(&w);
    jw_key(&w, "version");
    jw_string(&w, m->build.version);

    jw_key(&w, "build");
    jw_begin_object(&w);
    jw_key(&w, "compiler");
    jw_string(&w, m->build.compiler);
    jw_key(&w, "type");
    jw_string(&w, m->build.build_type);
    jw_key(&w, "openmp");
    jw_bool(&w, m->build.openmp);
    jw_key(&w, "sanitize");
    jw_bool(&w, m->build.sanitize);
    jw_end_object(&w);

    jw_key(&w, "cpu");
    jw_begin_object(&w);
    jw_key(&w, "model");
    jw_string(&w, m->cpu_model[0] ? m->cpu_model : NULL);
    jw_key(&w, "logical_cores");
    jw_int(&w, m->logical_cores);
    jw_key(&w, "features");
    jw_begin_array(&w);
    for (int i = 0; i < BN_CPU_FEATURE_COUNT; i++)
        if (bn_cpu_feature_has(&m->features, i)) jw_string(&w, bn_cpu_feature_name(i));
    jw_end_array(&w);
    jw_end_object(&w);

    jw_key(&w, "backends");
    jw_begin_array(&w);
    for (int i = 0; i < 3; i++) {
        jw_begin_object(&w);
        jw_key(&w, "name");
        jw_string(&w, m->backends[i].name);
        jw_key(&w, "available");
        jw_bool(&w, m->backends[i].available);
        if (!m->backends[i].available) {
            jw_key(&w, "reason");
            jw_string(&w, m->backends[i].reason);
        }
        jw_end_object(&w);
    }
    jw_end_array(&w);

    jw_key(&w, "gpus");
    jw_begin_array(&w);
    for (int i = 0; i < m->gpus; i++) {
        jw_begin_object(&w);
        jw_key(&w, "device");
        jw_int(&w, i);
        jw_key(&w, "name");
        jw_string(&w, m->gpu[i].name);
        if (m->gpu[i].stats_ok) {
            const bn_cuda_memory_stats *st = &m->gpu[i].stats;
            jw_key(&w, "allocator");
            jw_begin_object(&w);
            jw_key(&w, "allocated");
            jw_int(&w, (long long)st->allocated);
            jw_key(&w, "cached");
            jw_int(&w, (long long)st->cached);
            jw_key(&w, "peak_allocated");
            jw_int(&w, (long long)st->peak_allocated);
            jw_key(&w, "reserved");
            jw_int(&w, (long long)st->reserved);
            jw_key(&w, "num_device_mallocs");
            jw_int(&w, (long long)st->num_device_mallocs);
            jw_key(&w, "num_allocs");
            jw_int(&w, (long long)st->num_allocs);
            jw_end_object(&w);
        }
        jw_end_object(&w);
    }
    jw_end_array(&w);

    jw_key(&w, "threads");
    jw_int(&w, m->threads);
    jw_end_object(&w);
    fputc('\n', stdout);
}

static int run_info(const cli_cmd *cmd, const cli_args *args)
{
    machine_info m = gather();
    if (cli_has(cmd, args, "--json"))
        print_json(&m);
    else
        print_text(&m);
    return CLI_EXIT_OK;
}

static const cli_opt info_opts[] = {
    {"--json", NULL, NULL, "write one JSON object (one line) instead of text"},
    {NULL, NULL, NULL, NULL},
};

const cli_cmd cli_cmd_info = {
    .name = "info",
    .summary = "show the version, build, CPU features, backends and threads",
    .args_usage = "",
    .description = "Shows what this born is and what the machine under it offers: the version;\n"
                   "the compiler, build type, OpenMP and sanitizers of the build; the CPU model,\n"
                   "its logical cores and the SIMD features born can use (CPUID checked against\n"
                   "what the OS enables); each backend and why it is not available; the number\n"
                   "of threads the CPU backend uses (OMP_NUM_THREADS sets it).",
    .opts = info_opts,
    .max_positional = 0,
    .run = run_info,
};
