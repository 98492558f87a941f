/* parlstm: the command dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "testing.h"


static void usage(FILE *f)
{
    int n;
    const cli_command *c = cli_commands(&n);
    fprintf(f,
        "Usage: parlstm COMMAND [OPTIONS]\n"
        "A multi-threaded, data-parallel LSTM trainer for image sets read row by row\n"
        "(MNIST: each 28x28 image is a sequence of 28 rows of 28 pixels).\n"
        "\n"
        "Commands:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-8s %s\n", c[i].name, c[i].summary);
    fprintf(f,
        "\n"
        "  parlstm COMMAND --help   options of one command\n"
        "  parlstm --version        version and build facts\n"
        "\n"
        "Get MNIST with parlstm-fetch-mnist (data/fetch-mnist.sh in a source tree).\n"
        "The data directory, unless --data DIR says otherwise: $PARLSTM_DATA, else\n"
        "./data/mnist when it exists, else $XDG_DATA_HOME/parlstm/mnist (by default\n"
        "~/.local/share/parlstm/mnist), where parlstm-fetch-mnist puts it.\n"
        "Logs go to stderr; the last line on stdout is a machine-readable 'result:'\n"
        "line.\n");
}

int main(int argc, char **argv)
{
    cli_argv = argv;
    /* for the kill test: every atomic write pauses before its rename */
    const char *slow = getenv("PARLSTM_TEST_SLOW_WRITE_MS");
    if (slow && *slow)
        pl_test_set_write_delay(atoi(slow));
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
        printf("cpus available: %d; AVX-512: %s; default GEMM: %s\n", pl_cpu_count(),
               pl_cpu_has_avx512() ? "yes" : "no", pl_gemm_name(pl_gemm_resolve(PL_GEMM_AUTO)));
        printf("OpenBLAS core: %s", pl_blas_corename());
        const char *better = pl_blas_better_coretype();
        if (better)
            printf(" (misdetected; --gemm blas runs it as %s)", better);
        printf("\n");
        return 0;
    }
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "parlstm: unknown command '%s' (commands: train, eval, bench; see parlstm --help)\n",
            cmd);
    return EXIT_USAGE;
}
