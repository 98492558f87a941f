/* parlstm: the command dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"


/* The commands' entry points; "help-man" is hidden (it writes parlstm.1). */
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} RUN[] = {
    {"train", cmd_train},     {"eval", cmd_eval},     {"predict", cmd_predict},
    {"export", cmd_export},   {"import", cmd_import}, {"plot", cmd_plot},
    {"bench", cmd_bench},     {"help-man", cmd_help_man},
};

static void usage(FILE *f)
{
    int n;
    const cli_command *c = cli_commands(&n);
    fprintf(f, "Usage: parlstm COMMAND [OPTIONS]\n");
    cli_wrap(f, CLI_ABOUT, 0, 0);
    fprintf(f, "\nCommands:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-8s %s\n", c[i].name, c[i].summary);
    fprintf(f,
        "\n"
        "  parlstm COMMAND --help   options of one command\n"
        "  parlstm --version        version and build facts\n"
        "\n");
    cli_wrap(f, CLI_DATA_RULE, 0, 0);
    cli_wrap(f, CLI_OUTPUT_RULE, 0, 0);
}

static int dispatch(int argc, char **argv);

/* One process, or one rank of an MPI job (mpirun, srun): the commands run
 * the same way; with several ranks they train together and rank 0 alone
 * prints. */
int main(int argc, char **argv)
{
    cli_argv = argv;
    int rc = cli_ranks_start(&argc, &argv);
    if (rc)
        return rc;
    rc = dispatch(argc, argv);
    fflush(stdout);
    fflush(stderr);
    pl_dist_finalize();
    return rc;
}

static int dispatch(int argc, char **argv)
{
    cli_test_hooks_process();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("parlstm %s\n", PACKAGE_VERSION);
        printf("cpus available: %d; AVX-512: %s; AVX512_BF16: %s\n", pl_cpu_count(),
               pl_cpu_has_avx512() ? "yes" : "no",
               pl_cpu_has_avx512_bf16() ? "yes (--precision bf16 in hardware)"
                                        : "no (--precision bf16 on the software path)");
        printf("kernels: --kernels auto runs %s\n", pl_gemm_auto_reason());
        printf("kernel sets this CPU runs:");
        for (int be = PL_GEMM_NAIVE; be <= PL_GEMM_LAST; be++)
            if (pl_gemm_available((pl_gemm_backend)be))
                printf(" %s", pl_gemm_name((pl_gemm_backend)be));
        printf("\n");
        const pl_cpu_caches cache = pl_cpu_cache_sizes();
        int kc;
        long a_limit;
        pl_gemm_blocking(PL_GEMM_AUTO, &kc, &a_limit);
        printf("caches per core: L1 data %ld KiB, L2 %ld KiB (0: not reported)\n",
               cache.l1d / 1024, cache.l2 / 1024);
        if (kc) {
            printf("GEMM blocking (%s): B in chunks of %d rows for L1; panel by panel while "
                   "A is at most %ld KiB (read by rows; %ld KiB by columns), else chunk by "
                   "chunk",
                   pl_gemm_name(pl_gemm_resolve(PL_GEMM_AUTO)), kc,
                   pl_gemm_rows_limit(a_limit) / 1024, a_limit / 1024);
            const pl_gemm_rules rules = pl_gemm_rules_of(PL_GEMM_AUTO);
            if (rules.one_chunk)
                printf("; the forward products in one chunk while A and a 64-column panel "
                       "of B fit %ld KiB",
                       pl_gemm_rows_limit(a_limit) / 1024);
            if (rules.long_blocks)
                printf("; dG W^T in chunks of %d rows (%d where it warms the backward pass)",
                       2 * kc, kc);
            printf("\n");
        }
        printf("OpenBLAS core: %s", pl_blas_corename());
        const char *better = pl_blas_better_coretype();
        if (better)
            printf(" (misdetected; --gemm blas runs it as %s)", better);
        printf("\n");
        if (pl_dist_built())
            printf("MPI: %s (built in; under mpirun or srun the ranks train together)\n",
                   pl_dist_library());
        else
            printf("MPI: no (one process; ./configure --with-mpi builds it in)\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof RUN / sizeof *RUN; i++)
        if (!strcmp(cmd, RUN[i].name))
            return RUN[i].fn(argc - 1, argv + 1);
    int n;
    const cli_command *c = cli_commands(&n);
    fprintf(stderr, "parlstm: unknown command '%s' (commands:", cmd);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", c[i].name);
    fprintf(stderr, "; see parlstm --help)\n");
    return EXIT_USAGE;
}
