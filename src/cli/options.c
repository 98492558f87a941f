/* The option table of every command: parsing, range checks and their
 * messages, defaults, and the help text (see cli.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define CMD_TB (CMD_TRAIN | CMD_BENCH)
#define CMD_DATA (CMD_TRAIN | CMD_EVAL | CMD_BENCH) /* the commands that read DIR */
#define CMD_RUN (CMD_TRAIN | CMD_EVAL | CMD_PREDICT) /* the commands that run a model */

static const char *const SCHEDULES[] = {"cosine", "constant", NULL};
static const char *const INITS[] = {"default", "tutorial", "chrono", "pytorch",
                                     NULL}; /* pl_init */
static const char *const LR_SCALINGS[] = {"none", "linear", "sqrt", NULL}; /* pl_lr_scaling */
static const char *const PRECISIONS[] = {"fp32", "bf16", NULL}; /* pl_precision */
static const char *const OPTIMIZERS[] = {"adam", "rmsprop", NULL}; /* pl_optimizer */
/* in the order of pl_gemm_backend */
static const char *const GEMMS[] = {"auto", "naive", "blas", "avx512", "avx2", "neon", NULL};
static const char *const SCALINGS[] = {"strong", "weak", "both", NULL};
static const char *const SEQUENCES[] = {"rows", "pixels", NULL}; /* pl_sequence */
static const char *const NORMALIZE[] = {"none", "standard", NULL}; /* pl_ckpt_meta.normalize */

/* The measured recipes (README: "Presets"); PRESET_NAMES in the same order. */
const cli_preset CLI_PRESETS[] = {
    {"mnist-99", "--hidden 256 --lr 0.003 --epochs 7 --init pytorch",
     "row-MNIST: 99% validation accuracy after 5 epochs"},
    {"smnist", "--sequence pixels --init chrono --lr 0.001 --epochs 60",
     "sequential MNIST: 97% test accuracy after 9 epochs"},
    {"psmnist", "--sequence pixels --permute 1 --hidden 256 --lr 0.001 --epochs 30",
     "permuted sequential MNIST: 90% test accuracy after 17 epochs"},
    {NULL, NULL, NULL}};
static const char *const PRESET_NAMES[] = {"mnist-99", "smnist", "psmnist", NULL};

/* In help order: the rows of a command keep this order in its --help. */
static const cli_option OPTIONS[] = {
    /* ---- data */
    {O_MODEL, "model", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL,
     CMD_EVAL | CMD_PREDICT | CMD_EXPORT, "Data",
     "the model: a model file (parlstm train --save, parlstm import) or a safetensors file "
     "(parlstm export) (required)", NULL},
    {O_IN, "in", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_IMPORT, "Data",
     "the safetensors file to read: written by parlstm export, or by PyTorch from the module "
     "that parlstm export describes (required)", NULL},
    {O_PLOT_LOG, "log", "FILE.csv", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_PLOT, "Data",
     "the training log, as written by parlstm train --log (required)", NULL},
    {O_DATA, "data", "DIR", ARG_TEXT, 0, 0, 0, NULL, NULL,
     "$PARLSTM_DATA, else ./data/mnist when it exists, else $XDG_DATA_HOME/parlstm/mnist, "
     "by default ~/.local/share/parlstm/mnist", CMD_DATA, "Data",
     "the data directory, with IDX files DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte, "
     "raw or .gz (images and labels in pairs: one without the other is refused); "
     "parlstm-fetch-mnist puts MNIST in the default place (data/fetch-mnist.sh "
     "in a source tree puts it in data/mnist)", NULL},
    {O_TRAIN_FILE, "train", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN, "Data",
     "your own training sequences instead of --data's images: a NumPy .npy of shape (N, T, D) "
     "or (N, T) (float32/64 or integers; its labels in --train-labels), a UCR 2018 .tsv (one "
     "series a line, its label first, tab-separated) or a UEA/sktime .ts file; told by the "
     "content, then the extension. Values are read as they are (no scaling); every sequence "
     "must be T steps long", NULL},
    {O_TRAIN_LABELS, "train-labels", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN,
     "Data", "the labels of a .npy --train: a .npy of N integers, 0 to C - 1", NULL},
    {O_TRAIN_LENGTHS, "train-lengths", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN,
     "Data", "the lengths of a .npy --train's sequences: a .npy of N integers, 1 to T "
     "(each sequence is read over its own length; its output is its last step's; the "
     "padded steps cost nothing)", NULL},
    {O_TEST_FILE, "test", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN | CMD_EVAL,
     "Data", "test sequences of the kind --train takes: for train, those of a --train set "
     "(without it: no test accuracy); for eval, instead of --data's images, for a model "
     "trained on --train's sequences, with as many features a step. Their labels are the "
     "training file's classes (by name, for .ts and .tsv)", NULL},
    {O_TEST_LABELS, "test-labels", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL,
     CMD_TRAIN | CMD_EVAL, "Data", "the labels of a .npy --test", NULL},
    {O_TEST_LENGTHS, "test-lengths", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL,
     CMD_TRAIN | CMD_EVAL, "Data", "the lengths of a .npy --test's sequences", NULL},
    {O_NORMALIZE, "normalize", "HOW", ARG_WORD, 0, 0, 0, NORMALIZE, NULL,
     "standard for --train's sequences, none for IDX images", CMD_TRAIN, "Data",
     "standard: each feature of --train's values becomes (x - mean) / std, the mean and the "
     "standard deviation taken over the valid steps of the training split (after --val is "
     "held out), applied to the validation and test values too and stored in the model, so "
     "that eval, predict and export apply them; none: values as they are. IDX images are "
     "always scaled by 1/255", NULL},
    {O_LENGTHS, "lengths", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_PREDICT, "Data",
     "the lengths of a .npy INPUT's sequences (a .npy of N integers); for one .npy input", NULL},
    {O_SYNTHETIC, "synthetic", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH, "Data",
     "random 28x28 images of 10 classes instead of the data directory's", NULL},
    {O_VAL, "val", "N", ARG_INT, 0, 100000000, 0, NULL, "5000", NULL, CMD_TRAIN, "Data",
     "hold out the first N training images for validation (0: none); with --train, a "
     "tenth of its sequences unless given", NULL},
    {O_CLASSES, "classes", "N", ARG_INT, 2, 256, 0, NULL, NULL,
     "the largest training label + 1", CMD_TRAIN, "Data",
     "the class count; every label must be below it", NULL},
    {O_SEQUENCE, "sequence", "MODE", ARG_WORD, 0, 0, 0, SEQUENCES, "rows", NULL, CMD_TRAIN,
     "Data", "how an image becomes a sequence: rows (each image row is a time step of the "
     "row's pixels; MNIST: 28 steps of 28) or pixels (each pixel a time step of width 1; "
     "MNIST: 784 steps, sequential MNIST)", NULL},
    {O_PERMUTE, "permute", "SEED", ARG_U64, 0, 0, 0, NULL, NULL, "the pixels in their order",
     CMD_TRAIN, "Data", "read each image's pixels in one fixed random order drawn from SEED, "
     "the same for every image (with --sequence pixels: permuted sequential MNIST); the "
     "model file records it, and eval reads the test images the same way", NULL},
    /* ---- training */
    {O_LAYERS, "layers", "N", ARG_INT, 1, PL_MAX_LAYERS, 0, NULL, "1", NULL, CMD_TB,
     "Training", "stacked LSTM layers, as PyTorch's nn.LSTM(num_layers=N): the first reads "
     "the projected input, each one above reads the hidden states of the one below at every "
     "step, the output layer reads the last one's final state", NULL},
    {O_DROPOUT, "dropout", "P", ARG_NUMBER, 0, 0.95, 0, NULL, "0", NULL, CMD_TRAIN, "Training",
     "inverted dropout with probability P on the hidden states passed from one layer to the "
     "next, in training only (as nn.LSTM(dropout=P); needs --layers 2 or more). The masks are "
     "a function of the seed, the step and each image's place in the data, so results stay "
     "deterministic and resumable", NULL},
    {O_EPOCHS, "epochs", "N", ARG_INT, 1, 1000000, 0, NULL, "1", NULL, CMD_TRAIN, "Training",
     "passes over the training images", NULL},
    {O_STEPS, "steps", "N", ARG_INT, 1, 1e12, 0, NULL, NULL, "the steps of --epochs", CMD_TRAIN,
     "Training", "train N steps, over as many epochs as that takes; with --epochs, stop after "
     "N steps at most", NULL},
    {O_GRID, "grid", "LIST", ARG_TEXT, 0, 0, 0, NULL, NULL,
     "every workers x threads with 1, 2 or 4 threads and workers x threads = 1, 2, 4, ... "
     "up to the CPUs this process may use", CMD_BENCH, "Training",
     "the configurations to measure: workers x threads, comma-separated, e.g. 1x1,2x1,1x2", NULL},
    {O_BENCH_STEPS, "steps", "N", ARG_INT, 1, 1000000, 0, NULL, "40", NULL, CMD_BENCH,
     "Training", "timed steps per configuration per round", NULL},
    {O_WARMUP, "warmup", "N", ARG_INT, 0, 1000000, 0, NULL, "3", NULL, CMD_BENCH, "Training",
     "untimed steps before each measurement", NULL},
    {O_ROUNDS, "rounds", "R", ARG_INT, 1, 100, 0, NULL, "3", NULL, CMD_BENCH, "Training",
     "rounds: every configuration is measured once per round", NULL},
    {O_BENCH_SEQ, "seq", "T,D", ARG_TEXT, 0, 0, 0, NULL, NULL, "the data's shape", CMD_BENCH,
     "Training", "time steps and input width of random images to measure on, a list "
     "separated by '/' (e.g. 28,28/784,1): a grid dimension; when T x D is 784 and the data "
     "directory holds MNIST, MNIST seen with that shape", NULL},
    {O_BENCH_BATCH, "batch", "LIST", ARG_INTS, 1, 65536, 0, NULL, "100", NULL, CMD_BENCH,
     "Training", "images per step for strong scaling (weak scaling uses N x workers x threads); a list "
     "(e.g. 32,100,256) measures every batch: a grid dimension", NULL},
    {O_BENCH_HIDDEN, "hidden", "LIST", ARG_INTS, 1, 8192, 0, NULL, "128", NULL, CMD_BENCH,
     "Training", "LSTM units; a list (e.g. 64,128,512) measures every size: a grid "
     "dimension", NULL},
    {O_BATCH, "batch", "N", ARG_INT, 1, 65536, 0, NULL, "100", NULL, CMD_TRAIN, "Training",
     "images per step", NULL},
    {O_HIDDEN, "hidden", "N", ARG_INT, 1, 8192, 0, NULL, "128", NULL, CMD_TRAIN, "Training",
     "LSTM units", NULL},
    {O_SCALING, "scaling", "S", ARG_WORD, 0, 0, 0, SCALINGS, "strong", NULL, CMD_BENCH,
     "Training", "strong (the batch stays), weak (the batch grows with workers x threads) or both", NULL},
    {O_LR, "lr", "X", ARG_NUMBER, 0, 10, 1, NULL, "0.01", NULL, CMD_TRAIN, "Training",
     "peak learning rate; above batch 500 the default is 0.01 x (1 + log2(batch / 500)), "
     "0.02 at batch 1,000 (not with --lr-scaling)", NULL},
    {O_SCHEDULE, "lr-schedule", "S", ARG_WORD, 0, 0, 0, SCHEDULES, "cosine", NULL, CMD_TRAIN,
     "Training", "cosine (from the peak rate down to 0 over the run, or over the steps after "
     "--lr-warmup) or constant", NULL},
    {O_LR_WARMUP, "lr-warmup", "STEPS", ARG_INT, 0, 1e12, 0, NULL, "0", NULL, CMD_TRAIN,
     "Training", "raise the rate linearly over the first STEPS steps: step s (counted from 0) "
     "runs at the peak rate x (s + 1) / STEPS, so the last warm-up step runs at the peak; "
     "--lr-schedule then runs over the remaining steps. 0: no warm-up; above batch 500 the "
     "default is 20 x log2(batch / 500) steps, 20 at batch 1,000", NULL},
    {O_LR_SCALING, "lr-scaling", "RULE", ARG_WORD, 0, 0, 0, LR_SCALINGS, "none", NULL,
     CMD_TRAIN, "Training", "the peak rate for the batch, against a reference batch of 100: "
     "none (--lr as it is), linear (--lr x batch / 100) or sqrt (--lr x sqrt(batch / 100)); "
     "the plan line shows the rate it gives", NULL},
    {O_WEIGHT_DECAY, "weight-decay", "X", ARG_NUMBER, 0, 1, 0, NULL, "0", NULL, CMD_TRAIN,
     "Training", "AdamW's decoupled weight decay: every step multiplies the parameters by "
     "1 - rate x X (the step's rate) before the update (Adam's or RMSprop's); rate x X "
     "must stay below 1. 0: off", NULL},
    {O_OPTIMIZER, "optimizer", "NAME", ARG_WORD, 0, 0, 0, OPTIMIZERS, "adam", NULL, CMD_TRAIN,
     "Training", "adam (betas 0.9, 0.999, eps 1e-8, as torch.optim.Adam) or rmsprop "
     "(torch.optim.RMSprop's defaults: alpha 0.99, eps 1e-8, no momentum: each parameter's "
     "step is rate x g / (sqrt(v) + eps), v the running mean of g^2); --weight-decay "
     "applies to either", NULL},
    {O_CLIP, "clip", "X", ARG_NUMBER, 0, 1e30, 0, NULL, "1", NULL, CMD_TRAIN, "Training",
     "clip the global gradient norm at X; 0 = off; above batch 500 the default is "
     "1 / (1 + 3 log2(batch / 500)), 0.25 at batch 1,000", NULL},
    {O_INIT, "init", "I", ARG_WORD, 0, 0, 0, INITS, "default", NULL, CMD_TRAIN, "Training",
     "default (Glorot-uniform, orthogonal recurrent weights, zero biases, +1 on the forget "
     "gate), tutorial (N(0,1) projections, 0.1 biases, Glorot-uniform LSTM kernel) or chrono "
     "(the default's weights; every layer's forget-gate biases log(u), u uniform in [1, T - 1] "
     "for T time steps, and input-gate biases their negatives: Tallec & Ollivier 2018, for "
     "long sequences) or pytorch (PyTorch's nn.Linear and nn.LSTM defaults: every weight, "
     "and the projections' biases, uniform in +-1/sqrt(fan-in); LSTM biases zero, +1 on "
     "the forget gate)", NULL},
    {O_INIT_FROM, "init-from", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN,
     "Training", "fine-tune: start from the parameters of FILE (a model file or a safetensors "
     "file) instead of --init. Its shapes must fit the run: the data's image width and "
     "classes, --hidden (taken from FILE when not given); Adam's moments and step count start "
     "at zero and the schedule at --lr. Not with --resume", NULL},
    {O_TUTORIAL, "tutorial", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN, "Training",
     "the TensorFlow tutorial exactly: --init tutorial --lr-schedule constant --clip 0", NULL},
    {O_SEED, "seed", "N", ARG_U64, 0, 0, 0, NULL, "1", NULL, CMD_TRAIN, "Training",
     "seed for initialisation and shuffling", NULL},
    {O_TARGET_ACC, "target-accuracy", "A", ARG_NUMBER, 0, 1, 1, NULL, NULL, NULL, CMD_TRAIN,
     "Training", "stop as soon as the validation accuracy reaches A (above 0, at most 1), "
     "evaluated every --eval-every steps; the result line then ends with time_to_target "
     "(seconds from the start of training to the end of the evaluation that reached A, "
     "evaluations included; nan when none did) and target_step (nan likewise). Needs "
     "validation images (--val above 0)", NULL},
    {O_EVAL_EVERY, "eval-every", "N", ARG_INT, 1, 1e12, 0, NULL, NULL, "after every epoch",
     CMD_TRAIN, "Training", "evaluate the validation images every N steps and after the last "
     "step, instead of after every epoch", NULL},
    {O_PRESET, "preset", "NAME", ARG_WORD, 0, 0, 0, PRESET_NAMES, NULL, NULL, CMD_TRAIN,
     "Training", "a named recipe: the options it stands for (listed below, under Presets) "
     "come first, and any option on the command line overrides them", NULL},
    /* ---- parallelism */
    {O_WORKERS, "workers", "W", ARG_INT, 1, 1024, 0, NULL, NULL,
     "one per CPU, keeping at least 16 images per worker", CMD_RUN, "Parallelism",
     "data-parallel worker threads", NULL},
    {O_THREADS, "threads", "T", ARG_INT, 1, 1024, 0, NULL, NULL,
     "the CPUs left per worker, at most one per 16 hidden units", CMD_RUN, "Parallelism",
     "OpenMP threads inside each worker", NULL},
    {O_PIN, "pin", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_TB, "Parallelism",
     "pin each worker and its OpenMP threads to their own CPUs (for dedicated machines)", NULL},
    {O_BENCH_GEMM, "kernels", "LIST", ARG_WORDS, 0, 0, 0, GEMMS, "auto", NULL, CMD_BENCH,
     "Parallelism", "kernel sets, as for train; a list (e.g. avx512,avx2,blas) measures "
     "every set in the same rounds: a grid dimension; %peak is over the FMA peak at each "
     "set's own vector width (--gemm is another name for it)", "gemm"},
    {O_GEMM, "kernels", "SET", ARG_WORD, 0, 0, 0, GEMMS, "auto", NULL, CMD_RUN, "Parallelism",
     "the kernel set (matrix products, LSTM cell, Adam): auto (the fastest this CPU runs, as "
     "parlstm --version says: avx512, else avx2, else neon on 64-bit ARM, else blas), "
     "avx512, avx2 or neon (ours), blas (OpenBLAS) or naive (plain loops) (--gemm is "
     "another name for it)", "gemm"},
    {O_PRECISION, "precision", "P", ARG_WORD, 0, 0, 0, PRECISIONS, "fp32", NULL, CMD_TB,
     "Parallelism", "the operands of the LSTM's matrix products: fp32, or bf16 (rounded to "
     "nearest even, the sums, weights, Adam's moments, cell state and output layer in fp32): "
     "about twice the multiply-adds per instruction on CPUs with AVX512_BF16 (parlstm "
     "--version says whether this one has it) with the avx512 kernels; elsewhere an exact "
     "software path gives the same bits, far slower than fp32. Recorded in checkpoints", NULL},
    {O_DET, "deterministic", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN,
     "Parallelism", "bitwise identical results for every --workers and --threads (the batch "
     "is cut into 16 fixed shards; slower)", NULL},
    {O_BENCH_DET, "deterministic", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH,
     "Parallelism", "also run every configuration with --deterministic, in the same rounds "
     "(rows marked 'det'): its cost, measured", NULL},
    /* ---- checkpoints */
    {O_CKPT, "checkpoint", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN,
     "Checkpoints", "keep the whole training state in FILE (atomic writes)", NULL},
    {O_CKPT_EVERY, "checkpoint-every", "N", ARG_INT, 1, 1e12, 0, NULL, "100", NULL, CMD_TRAIN,
     "Checkpoints", "write the checkpoint every N steps, and at the end", NULL},
    {O_RESUME, "resume", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN, "Checkpoints",
     "continue the run saved in FILE; it ends bitwise identical to the run left alone. "
     "Settings come from FILE; options given again must agree (--workers, --threads and "
     "--gemm may change, which keeps bit-for-bit results only with --deterministic). A run "
     "that had finished trains nothing: it is evaluated, saved with --save, and reported", NULL},
    /* ---- output */
    {O_SAVE, "save", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN, "Output",
     "write the trained model to FILE (read it with parlstm eval); not the checkpoint's file",
     NULL},
    {O_LOG, "log", "FILE.csv", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN, "Output",
     "write the training curve to FILE.csv: a row every --log-every steps and one per "
     "evaluation, flushed as they come (the columns are below); a run resumed with --resume "
     "appends to it. Draw it with parlstm plot", NULL},
    {O_TEST_EVERY_EPOCH, "test-every-epoch", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL,
     CMD_TRAIN, "Output", "evaluate the test set after every epoch too (its line, and a test "
     "row of --log): a learning curve on the test images", NULL},
    {O_LOG_EVERY, "log-every", "N", ARG_INT, 1, 1000000000, 0, NULL, "100", NULL, CMD_TRAIN,
     "Output", "a progress line (and --log row) every N steps", NULL},
    {O_PROFILE, "profile", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH, "Output",
     "also split a step's time into phases, per configuration", NULL},
    {O_SHARDS, "shards", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH, "Output",
     "also measure one worker at the shard sizes that strong scaling gives each worker "
     "(batch / P), for projections", NULL},
    {O_CSV, "csv", "FILE", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH, "Output",
     "write the table as CSV", NULL},
    {O_PLOT, "plot", "FILE.png", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_BENCH, "Output",
     "draw speed-up against threads (needs gnuplot)", NULL},
    {O_QUIET, "quiet", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_TRAIN | CMD_EVAL,
     "Output", "no progress lines: errors, notes and the result line only", NULL},
    {O_TIME_STEPS, "time-steps", "N", ARG_INT, 1, 65535, 0, NULL, NULL,
     "the file's time_steps metadata", CMD_IMPORT, "Output",
     "the sequence length the model reads (image rows, one per time step), for a file whose "
     "metadata does not record it (one saved by PyTorch); it must agree with the metadata "
     "when there is one", NULL},
    {O_EXPORT_OUT, "out", "FILE.safetensors", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_EXPORT,
     "Output", "the safetensors file to write (required)", NULL},
    {O_IMPORT_OUT, "out", "MODEL", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_IMPORT, "Output",
     "the model file to write, for parlstm eval, parlstm predict and parlstm train --init-from "
     "(required)", NULL},
    {O_PLOT_OUT, "out", "FILE.png", ARG_TEXT, 0, 0, 0, NULL, NULL, NULL, CMD_PLOT, "Output",
     "the PNG image to write (required)", NULL},
    {O_PROBS, "probabilities", NULL, ARG_NONE, 0, 0, 0, NULL, NULL, NULL, CMD_PREDICT, "Output",
     "add every class's probability: columns p_0 ... p_C-1", NULL},
    {O_TOP, "top", "K", ARG_INT, 1, 256, 0, NULL, "1", NULL, CMD_PREDICT, "Output",
     "the K most probable classes: columns class_2, probability_2 ... class_K, "
     "probability_K after the best one's (K at most the model's classes)", NULL},
};
#define NOPT (sizeof OPTIONS / sizeof *OPTIONS)

/* ---- the program */

const char CLI_ABOUT[] =
    "A multi-threaded, data-parallel LSTM trainer for image sets read row by row (MNIST: each "
    "28x28 image is a sequence of 28 rows of 28 pixels).";

const char CLI_DATA_RULE[] =
    "Get MNIST with parlstm-fetch-mnist (data/fetch-mnist.sh in a source tree). The data "
    "directory, unless --data DIR says otherwise: $PARLSTM_DATA, else ./data/mnist when it "
    "exists, else $XDG_DATA_HOME/parlstm/mnist (by default ~/.local/share/parlstm/mnist), "
    "where parlstm-fetch-mnist puts it.";

const char CLI_OUTPUT_RULE[] =
    "Logs and errors go to stderr; train and eval end stdout with a machine-readable "
    "'result:' line, predict writes CSV there.";

/* ---- commands */

static void train_notes(FILE *f)
{
    fprintf(f, "Presets (--preset NAME):\n");
    for (const cli_preset *p = CLI_PRESETS; p->name; p++)
        fprintf(f, "  %-9s %s\n            (%s)\n", p->name, p->options, p->what);
    fprintf(f, "\n");
    fprintf(f,
        "SIGINT/SIGTERM finish the current step, write the checkpoint and exit with\n"
        "130/143; a second signal exits at once, leaving the last checkpoint intact.\n"
        "SIGUSR1 stops like SIGTERM (mpirun forwards it to every rank at once).\n"
        "\n"
        "Several processes: mpirun -np R parlstm train ... (or srun --mpi=pmix) splits\n"
        "every batch across R ranks and their workers (ranks=R in the result line);\n"
        "rank 0 alone prints, evaluates and writes files (README: several hosts).\n"
        "\n"
        "Logs go to stderr. The last stdout line is the result, for example\n"
        "  result: steps=550 train_loss=0.0818 val_accuracy=0.9806 test_accuracy=0.9782\n"
        "  seconds=4.4 samples_per_sec=12405 ranks=1 workers=2 threads=1 gemm=avx512\n"
        "  seed=1\n"
        "(one line). train_loss is the mean over the last --log-every steps; seconds and\n"
        "samples_per_sec count the training steps only, not evaluation. A value the run\n"
        "does not have is written nan: val_accuracy with --val 0, test_accuracy without\n"
        "DIR/t10k-*, train_loss and samples_per_sec when no step ran (resuming a run\n"
        "that had finished). With --target-accuracy the line ends with\n"
        "time_to_target=SECONDS target_step=N (both nan when no validation reached\n"
        "the target), and steps is the steps done.\n"
        "\n"
        "--log FILE.csv has the header\n"
        "  kind,step,epoch,lr,loss,accuracy,grad_norm,samples_per_sec,seconds\n"
        "and a row of kind train every --log-every steps: the step reached, its epoch,\n"
        "the learning rate of that step, the mean loss, batch accuracy and gradient norm\n"
        "(before clipping) over the steps since the last row, their samples/s, and the\n"
        "seconds since training started; kind val after each epoch and kind test at the\n"
        "end: the loss and accuracy on the validation or test images (lr, grad_norm and\n"
        "samples_per_sec empty). A resumed run appends; steps it does again after its\n"
        "last checkpoint appear twice, and the later rows count (parlstm plot keeps\n"
        "those).\n"
        "\n"
        "When --save cannot be written after training (a full disk), the model is not\n"
        "lost: it goes to FILE.rescue-PID in $TMPDIR (else /tmp), else in the working\n"
        "directory, and the message says where; with --checkpoint, the checkpoint also\n"
        "holds it (parlstm train --resume CHECKPOINT --save FILE writes it). The exit\n"
        "status is 1 either way.\n");
}

static void eval_notes(FILE *f)
{
    fprintf(f,
        "The last stdout line is the result, for example\n"
        "  result: test_accuracy=0.9805 test_loss=0.0651 images=10000 seconds=0.40\n");
}

static void bench_notes(FILE *f)
{
    const pl_config mnist = {28, 128, 10, 1};
    fprintf(f,
        "Columns: samples/s (median, and the range over rounds); model GFLOP/s counts\n"
        "the matrix products of the standard unfolded computation (%.2f GFLOP per step\n"
        "at batch 100); exec GFLOP/s counts what parlstm executes (it folds the input\n"
        "projection into the gate weights: %.2f GFLOP); speed-up over the first\n"
        "configuration; parallel efficiency = speed-up / (workers x threads); %%peak =\n"
        "exec GFLOP/s over the FMA peak of all those threads measured in the same rounds\n"
        "(each round's the higher of a measurement before its steps and one after;\n"
        "with --precision bf16 on AVX512_BF16: over vdpbf16ps's peak, about twice it).\n"
        "\n"
        "Each round's progress line (over shapes, one a round per hidden size and\n"
        "batch) also gives, at its start and end, the rate of parlstm's GEMM kernel\n"
        "(auto's, when --gemm names one not of ours) on operands in L1 over the FMA\n"
        "loop's, on the core of the thread that measures: on a shared host it falls\n"
        "(on one, from about 93%% to 74%%) while a busy neighbour shares that core,\n"
        "which slows the GEMM's loads and hardly the FMA loop; that round's %%peak\n"
        "then understates.\n",
        pl_step_flops_model(&mnist, 28, 100) / 1e9,
        pl_step_flops_executed(&mnist, 28, 100) / 1e9);
}

static void predict_notes(FILE *f)
{
    fprintf(f,
        "Each INPUT is a PNG image (any colour type and depth, made gray), a PGM image\n"
        "(P5 or P2) or an IDX images file (raw or .gz: every image in it). An image must\n"
        "have the shape the model was trained on; it is read as the model reads its\n"
        "images (row by row, or pixel by pixel in the model's order), pixels / 255.\n"
        "For a model trained on sequences of values (train --train), each INPUT is a\n"
        ".npy (--lengths FILE for its lengths), .ts or .tsv of sequences with the\n"
        "model's features a step, standardised as the model records; their labels are\n"
        "not needed (a .npy) but must be classes of the model (a .ts or .tsv). A model\n"
        "trained on .ts or .tsv files writes its classes' names, others the index.\n"
        "\n"
        "stdout is CSV, a header and one row per image, for example\n"
        "  input,index,class,probability\n"
        "  digit.png,0,7,0.998125\n"
        "  t10k-images-idx3-ubyte,0,7,0.999801\n"
        "index is the image's place in its file (0 for PNG and PGM); a file name with a\n"
        "comma or a quote is quoted as CSV does.\n");
}

static void export_notes(FILE *f)
{
    fprintf(f,
        "The tensors are named for this PyTorch module, which loads the file with\n"
        "load_state_dict(strict=True):\n"
        "  input = nn.Linear(D, H); lstm = nn.LSTM(H, H, num_layers=L, batch_first=True)\n"
        "  output = nn.Linear(H, C); logits = output(lstm(input(x))[0][:, -1])\n"
        "with x the pixels / 255 as (batch, time steps, width). The metadata records\n"
        "how the model reads images (sequence, time_steps, image_rows, image_cols,\n"
        "permuted, permute_seed and pixel_order: the permutation itself, for PyTorch),\n"
        "or, for a model of values, input_scaling \"none\" or \"standard\" with\n"
        "normalize_mean and normalize_std (x becomes (x - mean) / std per feature) and\n"
        "class_names,\n"
        "and parlstm import reads all of it back:\n"
        "export then import gives the model file's parameters back bit for bit.\n"
        "examples/load_in_pytorch.py (in the source tree) evaluates an export.\n");
}

static void import_notes(FILE *f)
{
    fprintf(f,
        "parlstm's LSTM bias is one vector: PyTorch's bias_ih and bias_hh are added.\n"
        "Refused, naming the tensor or the metadata key: missing, extra or misshapen\n"
        "tensors, dtypes other than F32, NaN or infinite weights, damaged files, and\n"
        "what a parlstm model cannot represent (a bidirectional LSTM, projections,\n"
        "another input scaling, gate order or sequence mode).\n");
}

static void plot_notes(FILE *f)
{
    fprintf(f,
        "Two panels against the training step: the loss (log scale) above, the accuracy\n"
        "below; the training rows as lines, validation as marked points, the test\n"
        "result as a marked point at the last step, the last values in the key. The\n"
        "accuracy axis starts just below the accuracies after the first tenth of the\n"
        "steps (a note says so when the first steps fall below it). Needs gnuplot\n"
        "(Debian: gnuplot-nox).\n");
}

static const cli_command COMMANDS[] = {
    {CMD_TRAIN, "train", "parlstm train [OPTIONS]",
     "train a model (defaults: MNIST, one epoch)",
     "Trains the row-sequential LSTM classifier: each image row is a time step; a D->H input "
     "projection, one LSTM layer of H units (forget bias +1, zero initial state), an H->C "
     "output layer on the last hidden state, softmax cross-entropy, Adam. It trains on "
     "DIR/train-*, less the validation images, and reports the test accuracy on DIR/t10k-* "
     "when that is present; or, with --train FILE, on your own sequences of real values "
     "(each step a vector of D features), tested on --test FILE.",
     1, NULL, train_notes,
     "0 done; 1 error (data, files, numerics; also when --save failed and the model went "
     "to a rescue file); 2 bad options; 130/143 stopped by SIGINT/SIGTERM."},
    {CMD_EVAL, "eval", "parlstm eval --model FILE [OPTIONS]",
     "evaluate a saved model on a test set",
     "Evaluates a model saved by 'parlstm train --save FILE' (or a safetensors file) on the "
     "test set DIR/t10k-{images-idx3,labels-idx1}-ubyte[.gz]. The images must have the width, "
     "and (when the model records it) the rows, that the model was trained on. A model "
     "trained on sequences of values (train --train) is evaluated on --test FILE instead, "
     "standardised with the statistics the model records.",
     0, NULL, eval_notes, "0 done; 1 error (model, data); 2 bad options."},
    {CMD_PREDICT, "predict", "parlstm predict --model FILE [OPTIONS] INPUT...",
     "classify images (PNG, PGM, IDX) or sequences (.npy, .ts, .tsv) with a saved model",
     "Classifies every image or sequence of the INPUT files with the model and writes one CSV "
     "row per image or sequence on stdout: the input, the item's index in it, the most "
     "probable class and its probability.",
     0, "INPUT...", predict_notes,
     "0 every image classified; 1 an input refused or unreadable (named on stderr; the "
     "images of the other inputs are still classified and written) or the model unreadable; "
     "2 bad options."},
    {CMD_EXPORT, "export", "parlstm export --model FILE --out FILE.safetensors",
     "write a model as safetensors, for PyTorch",
     "Writes the model as float32 tensors in the safetensors format (the exchange format of "
     "PyTorch and Hugging Face), atomically.",
     0, NULL, export_notes, "0 written; 1 error (the model unreadable, the file not written); "
     "2 bad options."},
    {CMD_IMPORT, "import", "parlstm import --in FILE.safetensors --out MODEL [OPTIONS]",
     "read a safetensors model (parlstm export, PyTorch) into a model file",
     "Reads a safetensors file written by parlstm export, or by PyTorch from the same "
     "module, and writes it as a parlstm model file, atomically.",
     0, NULL, import_notes, "0 written; 1 error (the file refused, the model not written); "
     "2 bad options."},
    {CMD_PLOT, "plot", "parlstm plot --log FILE.csv --out FILE.png",
     "draw the loss and accuracy curves of a training log",
     "Draws the training log written by 'parlstm train --log FILE.csv' as a PNG image with "
     "gnuplot.",
     0, NULL, plot_notes, "0 written; 1 error (the log unreadable, gnuplot missing or "
     "failing); 2 bad options."},
    {CMD_BENCH, "bench", "parlstm bench [OPTIONS]",
     "measure training speed over a grid of workers x threads",
     "Measures training steps per second for each workers x threads configuration, "
     "alternating the configurations round after round (A B C A B C ...) and reporting "
     "medians, with the CPU's FMA peak measured in the same rounds. Strong scaling keeps "
     "--batch for every configuration; weak scaling gives each configuration a batch "
     "of --batch x workers x threads. It trains on the images of DIR/train-*; when they cannot be read, "
     "or with --synthetic, on random 28x28 images.",
     0, NULL, bench_notes, "0 done; 1 error; 2 bad options."},
};
#define NCMD (sizeof COMMANDS / sizeof *COMMANDS)

const cli_command *cli_commands(int *n)
{
    *n = (int)NCMD;
    return COMMANDS;
}

const cli_command *cli_command_of(unsigned cmd)
{
    for (size_t c = 0; c < NCMD; c++)
        if (COMMANDS[c].bit == cmd)
            return &COMMANDS[c];
    abort(); /* a CMD_* without its row */
}

const cli_option *cli_options_for(unsigned cmd, const cli_option *prev)
{
    for (const cli_option *o = prev ? prev + 1 : OPTIONS; o < OPTIONS + NOPT; o++)
        if (o->cmds & cmd)
            return o;
    return NULL;
}

const char *cli_word(cli_opt_id id, long long index)
{
    for (size_t k = 0; k < NOPT; k++)
        if (OPTIONS[k].id == id && OPTIONS[k].words) {
            for (long long w = 0; OPTIONS[k].words[w]; w++)
                if (w == index)
                    return OPTIONS[k].words[w];
            return "?";
        }
    abort(); /* an option without words */
}

const char *cli_default_text(const cli_option *opt)
{
    return opt->def_help ? opt->def_help : opt->def;
}

/* ---- help */

void cli_wrap(FILE *f, const char *text, int col, int indent)
{
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t word = strcspn(p, " ");
        if (col > indent && col + 1 + (int)word > 79) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)word, p);
        col += (int)word;
        p += word;
    }
    fputc('\n', f);
}

const char *cli_option_text(const cli_option *o, char *buf, size_t len)
{
    const char *def = cli_default_text(o);
    snprintf(buf, len, "%s%s%s%s", o->help, def ? " (default: " : "", def ? def : "",
             def ? ")" : "");
    return buf;
}

static void print_option(FILE *f, const cli_option *o)
{
    char label[64], text[1024];
    int n = snprintf(label, sizeof label, "  --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
    cli_option_text(o, text, sizeof text);
    if (n < 21)
        fprintf(f, "%-22s", label);
    else
        fprintf(f, "%s\n%22s", label, "");
    cli_wrap(f, text, 22, 22);
}

void cli_usage(unsigned cmd, FILE *f)
{
    const cli_command *c = cli_command_of(cmd);
    fprintf(f, "Usage: %s\n", c->synopsis);
    cli_wrap(f, c->description, 0, 0);
    const char *group = NULL;
    for (const cli_option *o = cli_options_for(cmd, NULL); o; o = cli_options_for(cmd, o)) {
        if (c->grouped && (!group || strcmp(group, o->group) != 0))
            fprintf(f, "\n%s:\n", o->group);
        else if (!group)
            fprintf(f, "\n");
        group = o->group;
        print_option(f, o);
    }
    fprintf(f, "  -h, --help          this help\n\n");
    c->notes(f);
    fprintf(f, "\n");
    cli_wrap(f, c->exit_status, fprintf(f, "Exit status:"), 0);
}

/* ---- parsing */

static int bad_value(const char *cmd, const cli_option *o, const char *s)
{
    fprintf(stderr, "parlstm %s: --%s: ", cmd, o->name);
    switch (o->kind) {
    case ARG_INT:
        fprintf(stderr, "expected an integer from %lld to %lld", (long long)o->min,
                (long long)o->max);
        break;
    case ARG_U64:
        fprintf(stderr, "expected a non-negative integer below 2^64");
        break;
    case ARG_NUMBER:
        fprintf(stderr, "expected a number %s %g and at most %g",
                o->min_open ? "above" : "at least", o->min, o->max);
        break;
    case ARG_WORD:
    case ARG_WORDS:
        fprintf(stderr, "expected %s", o->kind == ARG_WORD ? "one of" : "a list of");
        for (int i = 0; o->words[i]; i++)
            fprintf(stderr, "%s %s", i ? "," : "", o->words[i]);
        fprintf(stderr, ";");
        break;
    case ARG_INTS:
        fprintf(stderr, "expected a comma-separated list of at most %d integers from %lld to %lld",
                CLI_MAX_LIST, (long long)o->min, (long long)o->max);
        break;
    default:
        break;
    }
    fprintf(stderr, "%s got '%s'\n", o->kind == ARG_WORD || o->kind == ARG_WORDS ? "" : ",", s);
    return EXIT_USAGE;
}

/* A comma-separated list of integers in range, or of o's words: 0 or -1. */
static int parse_list(const cli_option *o, const char *s, cli_value *v)
{
    v->n = 0;
    const char *p = s;
    do {
        char item[64];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || v->n == CLI_MAX_LIST)
            return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        long long x = 0;
        if (o->kind == ARG_INTS) {
            char *end;
            errno = 0;
            x = strtoll(item, &end, 10);
            if (errno == ERANGE || *end || x < (long long)o->min || x > (long long)o->max)
                return -1;
        } else {
            while (o->words[x] && strcmp(item, o->words[x]) != 0)
                x++;
            if (!o->words[x])
                return -1;
        }
        v->list[v->n++] = x;
        p += len;
    } while (*p++ == ',');
    v->i = v->list[0];
    return 0;
}

/* s as the value of option o, checked against its range. */
static int parse_value(const char *cmd, const cli_option *o, const char *s, cli_value *v)
{
    char *end = NULL;
    errno = 0;
    v->text = s;
    switch (o->kind) {
    case ARG_NONE:
        v->i = 1;
        return 0;
    case ARG_TEXT:
        return 0;
    case ARG_INT:
        v->i = strtoll(s, &end, 10);
        if (errno == ERANGE || end == s || *end || v->i < (long long)o->min ||
            v->i > (long long)o->max)
            return bad_value(cmd, o, s);
        return 0;
    case ARG_U64:
        v->u = strtoull(s, &end, 10);
        if (*s == '-' || errno == ERANGE || end == s || *end)
            return bad_value(cmd, o, s);
        return 0;
    case ARG_NUMBER:
        v->x = strtod(s, &end);
        if (errno == ERANGE || end == s || *end || !isfinite(v->x) ||
            (o->min_open ? v->x <= o->min : v->x < o->min) || v->x > o->max)
            return bad_value(cmd, o, s);
        return 0;
    case ARG_WORD:
        for (v->i = 0; o->words[v->i]; v->i++)
            if (strcmp(s, o->words[v->i]) == 0)
                return 0;
        return bad_value(cmd, o, s);
    case ARG_INTS:
    case ARG_WORDS:
        return parse_list(o, s, v) ? bad_value(cmd, o, s) : 0;
    }
    return bad_value(cmd, o, s);
}

/* Checks beyond the range: what this machine can do. */
static int check_value(const char *cmd, const cli_option *o, const cli_value *v)
{
    for (int k = 0; k < (o->id == O_BENCH_GEMM ? v->n : o->id == O_GEMM); k++) {
        pl_gemm_backend be = (pl_gemm_backend)(o->id == O_GEMM ? v->i : v->list[k]);
        if (!pl_gemm_available(be)) {
            fprintf(stderr, "parlstm %s: --%s %s: needs %s, which this CPU is not; "
                    "use auto (%s here)\n", cmd, o->name, pl_gemm_name(be), pl_gemm_requires(be),
                    pl_gemm_name(pl_gemm_resolve(PL_GEMM_AUTO)));
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* An option this command lacks: name the commands that have it, or the
 * options an abbreviation could mean. */
static int unknown_option(const char *cmd, unsigned bit, const char *arg)
{
    const char *name = arg + strspn(arg, "-");
    size_t len = strcspn(name, "=");
    int prefixes = 0;
    for (const cli_option *o = cli_options_for(bit, NULL); o; o = cli_options_for(bit, o))
        prefixes += strncmp(o->name, name, len) == 0;
    if (prefixes > 1 && arg[1] == '-') {
        fprintf(stderr, "parlstm %s: ambiguous option '%s': it could be", cmd, arg);
        const char *sep = " ";
        for (const cli_option *o = cli_options_for(bit, NULL); o; o = cli_options_for(bit, o))
            if (strncmp(o->name, name, len) == 0) {
                fprintf(stderr, "%s--%s", sep, o->name);
                sep = ", ";
            }
        fprintf(stderr, " (see parlstm %s --help)\n", cmd);
        return EXIT_USAGE;
    }
    unsigned others = 0;
    for (size_t k = 0; k < NOPT; k++)
        if (strlen(OPTIONS[k].name) == len && strncmp(OPTIONS[k].name, name, len) == 0)
            others |= OPTIONS[k].cmds;
    if (!others) {
        fprintf(stderr, "parlstm %s: unknown option '%s' (see parlstm %s --help)\n", cmd, arg,
                cmd);
        return EXIT_USAGE;
    }
    fprintf(stderr, "parlstm %s: unknown option '%s': it is an option of", cmd, arg);
    const char *sep = " ";
    for (size_t c = 0; c < NCMD; c++)
        if (others & COMMANDS[c].bit) {
            fprintf(stderr, "%sparlstm %s", sep, COMMANDS[c].name);
            sep = ", ";
        }
    fprintf(stderr, " (see parlstm %s --help)\n", cmd);
    return EXIT_USAGE;
}

/* The preset that argv names, or NULL. */
static const cli_preset *preset_named(int argc, char **argv)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            name = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0)
            name = argv[i] + 9;
    }
    for (const cli_preset *p = CLI_PRESETS; name && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

void cli_with_preset(int argc, char **argv, int *out_argc, char ***out)
{
    static char words[512], *args[1024];
    const cli_preset *p = preset_named(argc, argv);
    *out_argc = argc;
    *out = argv;
    if (!p || argc + 64 > (int)(sizeof args / sizeof *args))
        return;
    int n = 0;
    args[n++] = argv[0];
    snprintf(words, sizeof words, "%s", p->options);
    for (char *w = strtok(words, " "); w; w = strtok(NULL, " "))
        args[n++] = w;
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    *out_argc = n;
    *out = args;
}

int cli_parse(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT])
{
    return cli_parse_operands(cmd, argc, argv, v, NULL);
}

int cli_parse_operands(unsigned cmd, int argc, char **argv, cli_value v[O_COUNT], int *first)
{
    const char *name = cli_command_of(cmd)->name;
    struct option longopts[2 * NOPT + 2];
    int n = 0;
    memset(v, 0, sizeof(cli_value) * O_COUNT);
    for (const cli_option *o = cli_options_for(cmd, NULL); o; o = cli_options_for(cmd, o)) {
        const int has_arg = o->kind == ARG_NONE ? no_argument : required_argument;
        longopts[n++] = (struct option){o->name, has_arg, NULL, 256 + (int)o->id};
        if (o->alias)
            longopts[n++] = (struct option){o->alias, has_arg, NULL, 256 + (int)o->id};
        if (o->def && parse_value(name, o, o->def, &v[o->id]))
            abort(); /* a default outside its own range */
    }
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int c, at = -1;
    while ((c = getopt_long(argc, argv, ":h", longopts, &at)) != -1) {
        if (c == 'h') {
            cli_usage(cmd, stdout);
            return -1;
        }
        if (c == ':') {
            fprintf(stderr, "parlstm %s: option '%s' needs a value (see parlstm %s --help)\n",
                    name, argv[optind - 1], name);
            return EXIT_USAGE;
        }
        if (c < 256)
            return unknown_option(name, cmd, argv[optind - 1]);
        const cli_option *o = NULL;
        for (size_t k = 0; k < NOPT && !o; k++)
            if (OPTIONS[k].id == (cli_opt_id)(c - 256) && (OPTIONS[k].cmds & cmd))
                o = &OPTIONS[k];
        cli_option typed = *o; /* messages name the option as it was typed */
        if (at >= 0 && o->alias && strcmp(longopts[at].name, o->alias) == 0)
            typed.name = o->alias;
        cli_value *val = &v[o->id];
        int rc = parse_value(name, &typed, optarg ? optarg : "", val);
        if (!rc)
            rc = check_value(name, &typed, val);
        if (rc)
            return rc;
        val->set = 1;
    }
    if ((cmd & CMD_DATA) && !v[O_DATA].set)
        v[O_DATA].text = cli_default_data(); /* the rule of the help text */
    if (first) {
        if (optind >= argc) {
            fprintf(stderr, "parlstm %s: no %s given (see parlstm %s --help)\n", name,
                    cli_command_of(cmd)->operands, name);
            return EXIT_USAGE;
        }
        *first = optind;
        return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "parlstm %s: unexpected argument '%s' (see parlstm %s --help)\n", name,
                argv[optind], name);
        return EXIT_USAGE;
    }
    return 0;
}

const char *cli_default_data(void)
{
    static char buf[4096];
    const char *env = getenv("PARLSTM_DATA"), *xdg = getenv("XDG_DATA_HOME"),
               *home = getenv("HOME");
    struct stat st;
    if (env && *env)
        return env;
    if (stat("data/mnist", &st) == 0 && S_ISDIR(st.st_mode))
        return "data/mnist";
    if (xdg && xdg[0] == '/') /* the XDG rule: relative values are ignored */
        snprintf(buf, sizeof buf, "%s/parlstm/mnist", xdg);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.local/share/parlstm/mnist", home);
    else
        return "data/mnist";
    return buf;
}
