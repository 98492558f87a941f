/* parlstm export and parlstm import: a model to safetensors and back. */
#include <stdio.h>

#include "cli.h"

int cmd_export(int argc, char **argv)
{
    cli_value v[O_COUNT];
    int rc = cli_parse_in_out(CMD_EXPORT, argc, argv, v, O_MODEL, O_EXPORT_OUT);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *model = v[O_MODEL].text, *out = v[O_EXPORT_OUT].text;
    pl_model_info mi;
    float *params = NULL;
    if (cli_load_model("export", model, &mi, &params))
        return 1;
    pl_error err = {0};
    rc = pl_safetensors_save(out, &mi, params, NULL, &err) != PL_OK;
    if (rc) {
        print_error("export", &err);
    } else {
        char what[256];
        fprintf(stderr, "parlstm export: %s (%s) written to %s\n", model,
                cli_describe_model(&mi, what, sizeof what), out);
    }
    pl_free(params);
    pl_model_info_free(&mi);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    cli_value v[O_COUNT];
    int rc = cli_parse_in_out(CMD_IMPORT, argc, argv, v, O_IN, O_IMPORT_OUT);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *in = v[O_IN].text, *out = v[O_IMPORT_OUT].text;
    pl_model_info mi;
    float *params = NULL;
    pl_error err = {0};
    if (pl_safetensors_load(in, &mi, &params, &err)) {
        print_error("import", &err);
        return 1; /* the loader frees what it allocated */
    }
    int steps = (int)v[O_TIME_STEPS].i;
    if (mi.T == 0 && !v[O_TIME_STEPS].set) {
        fprintf(stderr, "parlstm import: %s does not record the sequence length (no time_steps "
                "in its metadata): give --time-steps N, the image rows the model reads\n", in);
        rc = EXIT_USAGE;
    } else if (mi.T != 0 && v[O_TIME_STEPS].set && steps != mi.T) {
        fprintf(stderr, "parlstm import: --time-steps %d differs from the %d time steps that %s "
                "records\n", steps, mi.T, in);
        rc = EXIT_USAGE;
    }
    if (!rc && mi.T == 0) { /* read row by row: images of T x D */
        mi.T = mi.rows = steps;
        mi.cols = mi.cfg.input;
    }
    if (!rc && pl_model_save(out, &mi, params, NULL, &err)) {
        print_error("import", &err);
        rc = 1;
    }
    if (!rc) {
        char what[256];
        fprintf(stderr, "parlstm import: %s (%s) written to %s\n", in,
                cli_describe_model(&mi, what, sizeof what), out);
    }
    pl_free(params);
    pl_model_info_free(&mi);
    return rc;
}
