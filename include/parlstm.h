/* parlstm: a multi-threaded, data-parallel LSTM trainer.
 *
 * The public API of libparlstm, used by the parlstm program, the tests and the
 * benchmarks. Shapes are given in comments as (rows, cols) of row-major float
 * arrays; T = time steps (image rows), D = input width (image columns),
 * H = hidden units, C = classes, B = batch rows.
 *
 * Errors: every function that can fail returns a pl_status and fills a
 * pl_error whose message names the file (when there is one), what was
 * expected and what was found. Only the command-line front end prints. */
#ifndef PARLSTM_H
#define PARLSTM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libparlstm.so exports exactly what this header declares: the library is
 * compiled with -fvisibility=hidden and these declarations are visible. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* ---------------------------------------------------------------- errors */

typedef enum {
    PL_OK = 0,
    PL_ERR_ARG,        /* an argument or option out of range */
    PL_ERR_NOMEM,      /* an allocation failed */
    PL_ERR_NOT_FOUND,  /* a file does not exist */
    PL_ERR_IO,         /* open, read, write, fsync or rename failed */
    PL_ERR_NOT_FILE,   /* a directory, FIFO or device where a file was expected */
    PL_ERR_EMPTY,      /* a file holds no bytes at all */
    PL_ERR_MAGIC,      /* wrong magic number */
    PL_ERR_DIMS,       /* wrong number of dimensions, or a zero or absurd size */
    PL_ERR_TRUNCATED,  /* the file ends before its header says it should */
    PL_ERR_TRAILING,   /* the file holds more bytes than its header says */
    PL_ERR_MISMATCH,   /* two things that must agree do not (counts, shapes, configs) */
    PL_ERR_LABEL,      /* a label at or above the class count */
    PL_ERR_CORRUPT,    /* a damaged compressed stream or a CRC mismatch */
    PL_ERR_VERSION,    /* a file format version this build does not read */
    PL_ERR_TOO_LARGE,  /* a size that overflows or exceeds a sane limit */
    PL_ERR_THREAD,     /* a thread could not be created */
    PL_ERR_NONFINITE,  /* a NaN or infinity in a loss or gradient */
    PL_ERR_INTERRUPTED /* stopped by a signal */
} pl_status;

typedef struct {
    pl_status code;
    char msg[768];
} pl_error;

/* The name of a status code ("truncated", "bad magic", ...). */
const char *pl_status_name(pl_status code);

/* --------------------------------------------------------------- images */

typedef struct {
    int rows, cols;  /* image rows are time steps, columns the input width */
    uint8_t *pixels; /* (rows, cols) gray, 0 = black; owned */
} pl_image;

/* Reads a PNG or PGM image as 8-bit gray, the format told by the file's
 * first bytes. PNG (libpng): gray as is, 1/2/4-bit gray scaled to 0..255,
 * 16 bits scaled to 8 (rounded), palette and colour converted to gray
 * (0.2126 R + 0.7152 G + 0.0722 B), alpha dropped. PGM: P5 (binary) and P2
 * (text), maxval 1..65535, values scaled to 0..255 (rounded); one image
 * per file. Sides from 1 to 65535. Malformed files are refused with a
 * message that names the file. */
pl_status pl_image_read(const char *path, pl_image *img, pl_error *err);
void pl_image_free(pl_image *img);

/* -------------------------------------------------------------- dataset */

typedef struct {
    const uint8_t *images; /* (n, T, D): image rows are time steps; or NULL */
    const uint8_t *labels; /* (n); NULL for images without labels */
    size_t n;
    int T, D;
    int classes;
    void *owned_images, *owned_labels; /* NULL for views */
    const float *values;   /* (n, T, D): real-valued sequences
                              (pl_dataset_load_series); or NULL. A set holds
                              images or values, never both */
    const void *series;    /* what the sequence file said (its class names), kept
                              by views; NULL for images */
    void *owned_series;    /* the same, owned; NULL for views */
    const int32_t *lengths; /* (n) each sequence's steps, 1..T (its output reads
                              its last one; later steps are never read); NULL:
                              every sequence is T steps long */
} pl_dataset;

/* Loads DIR/PREFIX-images-idx3-ubyte[.gz] and DIR/PREFIX-labels-idx1-ubyte[.gz]
 * (PREFIX is "train" or "t10k"). classes = 0: largest label + 1, and the
 * labels must hold at least two classes; otherwise every label must be
 * below classes. Neither file there: PL_ERR_NOT_FOUND; one without the
 * other: PL_ERR_MISMATCH, naming the missing one (a set is never half
 * used). pl_dataset_load_files checks its two paths the same way. */
pl_status pl_dataset_load(pl_dataset *ds, const char *dir, const char *prefix,
                          int classes, pl_error *err);
pl_status pl_dataset_load_files(pl_dataset *ds, const char *images_path,
                                const char *labels_path, int classes,
                                pl_error *err);
/* Loads an IDX images file alone (raw or .gz), for classifying: labels
 * NULL, classes 0. */
pl_status pl_dataset_load_images(pl_dataset *ds, const char *images_path, pl_error *err);
/* Loads a set of sequences of real values from path: a NumPy .npy of
 * shape (N, T, D), or (N, T) for D = 1 (float32/64 or integers,
 * little-endian, C order), with its integer labels in labels_path (shape
 * (N)) and, optionally, their lengths in lengths_path; a UCR 2018 .tsv
 * (one series a line, its label first); a UEA/sktime .ts. The kind is
 * told by the content, then the extension; labels_path and lengths_path
 * are for .npy only (NULL otherwise). train: the training set, whose
 * classes a test file's labels are mapped to (NULL when path is the
 * training file itself). At most 256 classes. T is the longest
 * sequence's steps; shorter ones keep their lengths (ds->lengths). Errors
 * name the file (and line). */
pl_status pl_dataset_load_series(pl_dataset *ds, const char *path, const char *labels_path,
                                 const char *lengths_path, const pl_dataset *train,
                                 pl_error *err);
/* Per-feature standardisation of a set of sequences (pl_dataset_load_series,
 * or a view of one, such as the training part of pl_dataset_split): the
 * mean and standard deviation (D = features floats each; features is the
 * file's D, also when the set is read pixel by pixel) of each feature over
 * the valid steps of ds's rows, in double, in row order; the population's
 * standard deviation, 1 for a feature that never varies. Refuses images
 * and a feature count other than the file's. */
pl_status pl_dataset_norm_stats(const pl_dataset *ds, int features, float *mean, float *std,
                                pl_error *err);
/* x = (x - mean) / std, feature by feature, on the valid steps of ds's rows,
 * in place (every view of the same set sees it); padded steps are left as
 * they are. Refuses what pl_dataset_norm_stats refuses, and a mean or a
 * standard deviation that is not finite (or not above 0). */
pl_status pl_dataset_standardize(pl_dataset *ds, int features, const float *mean,
                                 const float *std, pl_error *err);
/* The class names of a set of sequences (ds->classes of them: @classLabel's,
 * or a .tsv's labels as written), or NULL (images, .npy: the index is the
 * name). Owned by the set. */
const char *const *pl_dataset_class_names(const pl_dataset *ds);
/* A non-owning view of items [start, start + count) of src. */
pl_dataset pl_dataset_view(const pl_dataset *src, size_t start, size_t count);
/* The first val items of all as *valset, the rest as *train (views);
 * refuses a split that leaves no training items. */
pl_status pl_dataset_split(const pl_dataset *all, size_t val, pl_dataset *train,
                           pl_dataset *valset, pl_error *err);
void pl_dataset_free(pl_dataset *ds);

/* Reads every image pixel by pixel: T = rows x cols time steps of width
 * D = 1 (the bytes stay where they are). */
void pl_dataset_as_pixels(pl_dataset *ds);
/* The fixed random order of the n = T x D pixel positions of seed:
 * perm[k] = the position read at step k (Fisher-Yates on pl_rng). */
void pl_pixel_permutation(uint64_t seed, uint32_t *perm, size_t n);
/* Puts every image's pixels in that order (the same for every image); a
 * view gets its own copy of the images. */
pl_status pl_dataset_permute(pl_dataset *ds, uint64_t seed, pl_error *err);

/* ------------------------------------------------------------------ RNG */

/* xoshiro256** seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} pl_rng;

void pl_rng_seed(pl_rng *r, uint64_t seed);
uint64_t pl_rng_next(pl_rng *r);
double pl_rng_uniform(pl_rng *r);        /* [0, 1) */
double pl_rng_normal(pl_rng *r);         /* N(0, 1), Box-Muller */
uint64_t pl_rng_below(pl_rng *r, uint64_t n); /* [0, n), unbiased */
/* order[0..n) = a uniformly shuffled permutation of 0..n-1 (Fisher-Yates). */
void pl_rng_permutation(pl_rng *r, uint32_t *order, size_t n);

/* ---------------------------------------------------------------- model */

#define PL_MAX_LAYERS 8

typedef struct {
    int input;   /* D: input width (image columns) */
    int hidden;  /* H: LSTM units */
    int classes; /* C */
    int layers;  /* L: stacked LSTM layers, 1..PL_MAX_LAYERS */
} pl_config;

/* Named views into one flat parameter buffer (and, with the same layout,
 * into gradients, Adam moments and every worker's gradient buffer).
 * The four gates are stacked in column blocks [i | f | g | o]. Layer 0
 * reads the projected input, layer l > 0 the hidden states of layer l - 1;
 * the output layer reads the last layer's h_T. */
typedef struct {
    float *w_in;               /* (D, H)   input projection */
    float *b_in;               /* (H) */
    float *w[PL_MAX_LAYERS];   /* (2H, 4H) rows [input_t ; h_{t-1}], cols [i | f | g | o] */
    float *b[PL_MAX_LAYERS];   /* (4H)     forget block starts at +1.0 */
    float *w_out;              /* (H, C) */
    float *b_out;              /* (C) */
} pl_tensors;

/* Parameter groups in buffer order: w_in, b_in, then per layer w_lstm,
 * b_lstm (layer 0) or w_lstm_lL, b_lstm_lL (layer L > 0), then w_out,
 * b_out: 4 + 2 x layers groups. */
#define PL_MAX_GROUPS (4 + 2 * PL_MAX_LAYERS)
typedef struct {
    const char *name;
    size_t offset, size;
} pl_group;

size_t pl_param_count(const pl_config *cfg);
void pl_tensors_bind(const pl_config *cfg, float *base, pl_tensors *t);
/* Fills groups[0 .. n) in buffer order and returns n = 4 + 2 x layers. */
int pl_param_groups(const pl_config *cfg, pl_group *groups);
pl_status pl_config_check(const pl_config *cfg, pl_error *err);

typedef enum {
    PL_INIT_DEFAULT = 0, /* Glorot-uniform w_in, w_x, w_out; orthogonal w_h;
                            zero biases but +1.0 on the forget gate */
    PL_INIT_TUTORIAL,    /* N(0,1) w_in, w_out; 0.1 their biases; Glorot-uniform
                            over the whole (2H, 4H) kernel; zero LSTM bias,
                            +1.0 forget */
    PL_INIT_CHRONO,      /* the default's weights; chrono LSTM biases (Tallec &
                            Ollivier 2018): b_f = log(u), u ~ Uniform[1, T - 1],
                            b_i = -b_f, zero g and o biases */
    PL_INIT_PYTORCH      /* PyTorch's defaults: nn.Linear's weights and biases
                            U(-1/sqrt(in), 1/sqrt(in)) for the projections,
                            nn.LSTM's weights U(-1/sqrt(H), 1/sqrt(H)); the
                            LSTM bias zero but +1.0 forget, as the default */
} pl_init;
#define PL_INIT_LAST PL_INIT_PYTORCH

/* The parameters for sequences of T time steps, drawn from seed. The
 * chrono biases are drawn after every other parameter, so the weights
 * are the default's bit for bit; T below 3 gives u = 1 (zero biases). */
void pl_model_init_steps(const pl_config *cfg, float *params, pl_init init, uint64_t seed,
                         int T);
/* pl_model_init_steps with T = 0 (for the inits that do not read it). */
void pl_model_init(const pl_config *cfg, float *params, pl_init init,
                   uint64_t seed);

/* 32-byte aligned, zeroed allocation of n floats (free with pl_free). */
float *pl_alloc_floats(size_t n);
void pl_free(void *p);

/* ---------------------------------------------------------------- files */

/* Models and checkpoints are written atomically: to a temporary file in the
 * same directory (PATH.tmp.XXXXXX), fsynced, renamed over PATH, and the
 * directory fsynced; a crash leaves the old file or the new one.
 *
 * A write guard is the caller's handle on a write in progress: while a
 * save runs, it names the unfinished temporary file, so that a signal
 * handler which must exit at once can remove it (pl_write_abandon). Each
 * thread that writes uses its own guard, or passes NULL. */
typedef struct {
    char tmp[4096];               /* the temporary's name while active */
    volatile sig_atomic_t active; /* 1 while tmp exists unfinished */
} pl_write_guard;

/* Async-signal-safe: removes the guarded temporary file, if any. */
void pl_write_abandon(pl_write_guard *guard);

/* How images become sequences: each image row a time step of the row's
 * pixels (rows), or each pixel a time step of width 1 (pixels). */
typedef enum { PL_SEQ_ROWS = 0, PL_SEQ_PIXELS = 1 } pl_sequence;

/* What a model reads: 8-bit images, each pixel scaled by 1/255 (IDX, PNG,
 * PGM), or real values as the file holds them (pl_dataset_load_series),
 * standardised when the model records the statistics. */
typedef enum { PL_INPUT_IMAGES = 0, PL_INPUT_VALUES = 1 } pl_input;
#define PL_MAX_CLASS_NAME 4096 /* bytes of a class name in a model, at most */

/* The operands of the LSTM's matrix products (the gate products forward,
 * the recurrent gradient, the weight gradient): fp32, or rounded to bf16
 * with the sums in fp32 (weights, Adam's moments, the cell state, the
 * activations and the output layer stay fp32). bf16 runs on AVX512_BF16
 * where the CPU has it (pl_cpu_has_avx512_bf16) and the avx512 kernels are
 * in use, else on an exact software path that gives the same bits, slowly. */
typedef enum { PL_PRECISION_FP32 = 0, PL_PRECISION_BF16 } pl_precision;

/* The update: Adam (beta1, beta2, eps of pl_train_opts, PyTorch's form), or
 * RMSprop as PyTorch's torch.optim.RMSprop with its defaults (no momentum,
 * not centred): v = alpha v + (1 - alpha) g^2, p -= rate g / (sqrt(v) +
 * eps), alpha PL_RMSPROP_ALPHA, eps pl_train_opts' eps. Both take
 * --weight-decay as AdamW's decoupled decay. */
typedef enum { PL_OPT_ADAM = 0, PL_OPT_RMSPROP } pl_optimizer;
#define PL_RMSPROP_ALPHA 0.99f

/* What a model file records besides the parameters: every shape the model
 * needs, and how it reads an image. */
typedef struct {
    pl_config cfg;
    int T;       /* time steps it was trained on; 0 in a version 1 file,
                    which does not record them */
    int version; /* the file's format version (set by pl_model_load; 0 from
                    pl_safetensors_load) */
    /* version 3 on (older files: rows, and rows x cols = T x D when T is
     * known, no permutation, no dropout) */
    int rows, cols;        /* the images it reads (0, 0 when saving: T, D) */
    pl_sequence sequence;  /* rows: T = rows, D = cols; pixels: T = rows x
                              cols, D = 1 */
    int permuted;          /* 1: pixel positions in the fixed random order of
                              pl_dataset_permute(permute_seed) */
    uint64_t permute_seed;
    float dropout;         /* dropout between layers in training (a record) */
    /* version 4 on (older files: images, no standardisation, no class
     * names). A model read by pl_model_load, pl_safetensors_load or
     * pl_model_read owns these (pl_model_info_free); one given to a save
     * function lends them. */
    pl_input input;        /* what x is: pixels / 255, or values as read */
    int features;          /* entries of norm_mean and norm_std: the features per
                              step of the files it reads (cols); 0: none */
    float *norm_mean;      /* (features): a value x of feature d is read as */
    float *norm_std;       /* (features): (x - norm_mean[d]) / norm_std[d] */
    char **class_names;    /* (cfg.classes) the classes' names, or NULL: the
                              index is the name */
    /* version 5 on (older files: fp32) */
    pl_precision precision; /* the LSTM's products in training: eval and predict
                               run the model the same way */
} pl_model_info;

/* Frees what a reader allocated for m (the standardisation, the class
 * names) and clears those fields; nothing else of m changes. */
void pl_model_info_free(pl_model_info *m);

/* A set of sequences (as pl_dataset_load_series reads them) for a model m
 * trained on such a set (eval, predict): the file must have m's features
 * a step (m->cols); its labels are m's classes (by m->class_names when m
 * has them, else by index); with need_labels 0 a .npy may come without
 * labels (labels NULL). The values are as read: pl_dataset_standardize
 * applies m's statistics. */
pl_status pl_dataset_load_series_for(pl_dataset *ds, const char *path, const char *labels_path,
                                     const char *lengths_path, const pl_model_info *m,
                                     int need_labels, pl_error *err);

/* A model file: magic "PLSTMMDL", format version, the shapes, parameters,
 * CRC32 over everything before it (layout in modelfile.c). */
pl_status pl_model_save(const char *path, const pl_model_info *m, const float *params,
                        pl_write_guard *guard, pl_error *err);
/* Reads versions 1 to 5. Allocates *params (free with pl_free) and m's
 * standardisation and class names when the file has them
 * (pl_model_info_free). */
pl_status pl_model_load(const char *path, pl_model_info *m, float **params, pl_error *err);

/* A model file or a safetensors file (pl_safetensors_load), told by its
 * first bytes; allocates *params (free with pl_free). */
pl_status pl_model_read(const char *path, pl_model_info *m, float **params, pl_error *err);

/* Whether a file can be written at path (its directory takes a new file,
 * and path is no directory); creates nothing that stays. */
pl_status pl_check_writable(const char *path, pl_error *err);
/* Removes temporaries that killed writers left beside path
 * (path.tmp.XXXXXX); returns how many. */
int pl_remove_stale_temporaries(const char *path);

/* ----------------------------------------------------------- safetensors */

/* A model as named float32 tensors in the safetensors format, for PyTorch:
 * a module with input = nn.Linear(D, H), lstm = nn.LSTM(H, H, num_layers=L,
 * batch_first=True) and output = nn.Linear(H, C), whose logits are
 * output(lstm(input(x))[0][:, -1]) for x = pixels / 255 (or the values,
 * standardised as the metadata says) of shape (batch, T, D),
 * loads the file with load_state_dict(strict=True). Tensors: input.weight
 * (H, D), input.bias (H); per layer l lstm.weight_ih_l<l> (4H, H),
 * lstm.weight_hh_l<l> (4H, H), lstm.bias_ih_l<l> (4H) and lstm.bias_hh_l<l>
 * (4H, zeros: parlstm has one LSTM bias), gates i, f, g, o; output.weight
 * (C, H), output.bias (C).
 *
 * __metadata__ (strings) records the rest of m: format "pt", producer,
 * parlstm_version, module, input_scaling ("pixel/255" for images; for real
 * values "none", or "standard": x = (x - normalize_mean) / normalize_std
 * per feature, both written as JSON arrays of the floats' 9 digits),
 * class_names (a JSON array of strings, when m has them), gate_order "i,f,g,o",
 * sequence ("rows" or "pixels": how an image becomes x), time_steps,
 * image_rows and image_cols (when m->T > 0; T = 0 means unknown, as in a
 * version 1 model file), permuted ("yes" or "no"), permute_seed and
 * pixel_order (when permuted: the positions of pl_pixel_permutation, comma-
 * separated, for readers that cannot compute them; images up to 2^20
 * pixels), dropout, width, hidden, layers, classes.
 * Written atomically (guard as for pl_model_save, or NULL); refuses NaN or
 * infinite parameters and a description that does not fit the config. */
pl_status pl_safetensors_save(const char *path, const pl_model_info *m, const float *params,
                              pl_write_guard *guard, pl_error *err);
/* Reads such a file, from parlstm or from PyTorch, into m and *params: the
 * config from the tensors' shapes, the rest from the metadata (absent:
 * T = 0, rows = cols = 0, sequence rows, no permutation, dropout 0, images,
 * no standardisation, no class names); m->version is 0; m's statistics and
 * names are allocated (pl_model_info_free). lstm.bias_hh is added into the LSTM bias. Refuses,
 * naming the file and what is wrong: a bad header length, a header that is
 * not a JSON object, missing, extra or misshapen tensors, another dtype than
 * F32, offsets that overlap, leave holes or leave the file, NaN or infinite
 * weights, metadata that contradicts the tensors or itself, and what a
 * parlstm model cannot represent (a bidirectional LSTM, an LSTM with
 * projections, another input scaling, gate order or sequence mode).
 * Allocates *params (free with pl_free). Export then import gives m and
 * the parameters back bit for bit. */
pl_status pl_safetensors_load(const char *path, pl_model_info *m, float **params,
                              pl_error *err);

/* ----------------------------------------------------------------- GEMM */

/* A kernel set: the GEMM and the other hot kernels (LSTM cell, Adam, the
 * 16 x 16 transpose) for one instruction set, chosen at run time. The
 * values are stored in checkpoints: new sets go at the end. */
typedef enum {
    PL_GEMM_AUTO = 0, /* the fastest this CPU runs (see pl_gemm_auto_reason) */
    PL_GEMM_NAIVE,    /* plain loops: the reference */
    PL_GEMM_BLAS,     /* cblas_sgemm (OpenBLAS) on each block; portable C cell */
    PL_GEMM_AVX512,   /* our AVX-512 kernels (x86-64 with AVX-512 F/DQ/BW/VL) */
    PL_GEMM_AVX2,     /* our AVX2 + FMA kernels (x86-64 with AVX2 and FMA) */
    PL_GEMM_NEON      /* our NEON kernels (AArch64) */
} pl_gemm_backend;
#define PL_GEMM_LAST PL_GEMM_NEON

/* "auto", "naive", "blas", "avx512", "avx2", "neon"; "?" otherwise. */
const char *pl_gemm_name(pl_gemm_backend be);
/* Whether this CPU runs the set (AUTO, NAIVE and BLAS: always). */
int pl_gemm_available(pl_gemm_backend be);
/* AUTO -> the concrete set: avx512 when the CPU has AVX-512 (F, DQ, BW,
 * VL), else avx2 when it has AVX2 and FMA, else neon on AArch64, else
 * blas. Other values are returned as they are. */
pl_gemm_backend pl_gemm_resolve(pl_gemm_backend be);
/* Why AUTO resolves as it does, from the CPU's features, e.g. "avx2: the
 * CPU has AVX2 and FMA but not AVX-512". */
const char *pl_gemm_auto_reason(void);
/* What the set needs, for messages: "AVX-512 (F, DQ, BW, VL)", ... */
const char *pl_gemm_requires(pl_gemm_backend be);

/* CPU facts, and OpenBLAS's view of the CPU. */
int pl_cpu_has_avx512(void);
/* AVX-512 with AVX512_BF16 (vdpbf16ps): --precision bf16 in hardware. */
int pl_cpu_has_avx512_bf16(void);
const char *pl_blas_corename(void);
/* Number of CPUs this process may run on. */
int pl_cpu_count(void);
/* Seconds on the monotonic clock (for intervals). */
double pl_seconds(void);

/* ----------------------------------------------------------------- LSTM */

/* Where a step's time goes (see pl_trainer_profile). */
typedef enum {
    PL_PH_PACK,      /* folding and packing the weights (once per step) */
    PL_PH_LOAD,      /* uint8 pixels -> floats */
    PL_PH_FWD_GEMM,  /* [x_t, h_{t-1}, 1] x Wf, every step (input + recurrent) */
    PL_PH_FWD_CELL,  /* gate nonlinearities and cell update */
    PL_PH_OUTPUT,    /* output layer, softmax, loss and its gradient */
    PL_PH_BWD_CELL,  /* gate gradients */
    PL_PH_BWD_GEMM,  /* dh_{t-1} = dG_t W_h^T, every step (recurrent) */
    PL_PH_DIN_GEMM,  /* layers above the first: dG W_x^T over all steps, the
                        gradient for the layer below */
    PL_PH_WGRAD,     /* dWf = sum_t [x_t, 1, h_{t-1}]^T dG_t, one GEMM */
    PL_PH_UNFOLD,    /* dW_x, dW_in, db_in from dWf, and the other layers'
                        gradients into the canonical layout */
    PL_PH_REDUCE,    /* summing the shard gradients, norms */
    PL_PH_ADAM,      /* clipping and the update */
    PL_PH_WAIT,      /* waiting at the pool's barriers */
    PL_PH_COMM,      /* with several ranks: exchanging gradient slices, the
                        step's agreement and gathering the parameters,
                        waits for the other ranks included */
    PL_NPHASE
} pl_phase;

const char *pl_phase_name(pl_phase p);

/* ------------------------------------------------------------ optimiser */

typedef enum { PL_SCHED_COSINE = 0, PL_SCHED_CONSTANT } pl_schedule;
/* How the peak learning rate follows the batch (pl_lr_peak): as it is, in
 * proportion to batch / PL_LR_REF_BATCH, or to its square root. */
typedef enum { PL_LR_SCALE_NONE = 0, PL_LR_SCALE_LINEAR, PL_LR_SCALE_SQRT } pl_lr_scaling;
#define PL_LR_REF_BATCH 100


/* ---------------------------------------------------------------- ranks */

/* Data parallelism across processes: R ranks (MPI processes on one host or
 * many) each run a trainer on their share of every batch, and the trainers
 * combine their gradients (see pl_trainer_create). src/dist.c is the only
 * code that talks MPI. Until pl_dist_init joins an MPI job, and always
 * without MPI built in, there is one rank and every call below costs
 * nothing. Calls that say "every rank" are collective: all ranks make them,
 * in the same order; MPI calls come from the thread that called
 * pl_dist_init (MPI_THREAD_FUNNELED). */

/* Whether this build has MPI; the library's name and version, or "none". */
int pl_dist_built(void);
const char *pl_dist_library(void);
/* Joins the MPI job this process belongs to (the program calls it when an
 * MPI launcher, mpirun or srun, started it); an MPI singleton (one rank)
 * otherwise. Fails without MPI built in. Call once, before any thread. */
pl_status pl_dist_init(int *argc, char ***argv, pl_error *err);
/* Leaves the job (every rank, at the end; nothing with one rank). */
void pl_dist_finalize(void);
int pl_dist_rank(void);  /* 0 .. ranks - 1 */
int pl_dist_ranks(void); /* 1 without MPI */
/* An agreement point (every rank): returns the largest value passed, and
 * in *rank (may be NULL) the lowest rank that passed it. */
int pl_dist_agree(int value, int *rank);
/* Every rank: whether all ranks passed the same value. */
int pl_dist_same(uint64_t value);
/* Every rank: copies bytes from rank 0's buf into the others'. */
void pl_dist_bcast(void *buf, size_t bytes);
/* Ends every rank of the job at once with this exit status: for a failure
 * on one rank that the others cannot learn at an agreement point. With one
 * rank it is exit(status). */
void pl_dist_abort(int status) __attribute__((noreturn));

/* --------------------------------------------------------------- trainer */

typedef struct {
    int batch;          /* 100 */
    int hidden;         /* 128 */
    int classes;        /* 0: from the data */
    int epochs;         /* 1 */
    long steps;         /* 0: epochs * steps per epoch; otherwise stop there */
    float lr;           /* 0.01 */
    float beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    float clip;         /* global-norm clip; 0 = off (default 1.0) */
    pl_schedule schedule; /* cosine */
    pl_init init;       /* default */
    uint64_t seed;      /* 1 */
    int workers;        /* 0: automatic */
    int threads;        /* 0: automatic */
    int pin;            /* pin workers and OpenMP threads to CPUs */
    int deterministic;  /* bitwise identical results for every workers/threads */
    int profile;        /* time the phases of each step (pl_trainer_profile) */
    pl_gemm_backend gemm;
    float dropout;      /* inverted dropout on the hidden states passed from
                           one layer to the next, in training (0: off) */
    long warmup;        /* steps of linear warm-up: step s < warmup runs at
                           peak x (s + 1) / warmup, then the schedule runs
                           over the remaining steps (0: none) */
    pl_lr_scaling lr_scaling; /* the peak rate's scaling for the batch (none) */
    float weight_decay; /* AdamW's decoupled decay: every step multiplies the
                           parameters by 1 - rate x weight_decay before
                           the optimizer's update (0: off) */
    pl_precision precision; /* fp32 */
    pl_optimizer optimizer; /* adam */
} pl_train_opts;

void pl_train_opts_default(pl_train_opts *o);
/* The rate that warm-up rises to and the schedule starts from: o->lr,
 * times batch / 100 (linear) or sqrt(batch / 100) (sqrt). */
float pl_lr_peak(const pl_train_opts *o);
/* Resolves workers/threads 0 into concrete counts for `cpus` CPUs. Shards
 * keep at least 16 rows; while the fp32 gate weights stay within 4 MiB,
 * workers come first and the remaining CPUs become OpenMP threads; larger
 * weights, which every worker streams once per time step, put threads first
 * (two 16-unit gate panels or more each). A worker never gets more threads
 * than gate panels. (The trainer counts 2 bytes a weight in bf16.) */
void pl_resolve_parallelism(const pl_config *cfg, int batch, int cpus, int *workers,
                            int *threads);

typedef struct pl_trainer pl_trainer;

/* A trainer for data of T time steps; initialises parameters from seed.
 * With several ranks (pl_dist_ranks() > 1), every rank creates one with the
 * same settings and makes the same calls with the same batches: each rank
 * computes its part of every batch, and after every step every rank holds
 * the same parameters. Under --deterministic the result is bitwise the
 * one-process result whatever the ranks, workers and threads. */
pl_trainer *pl_trainer_create(const pl_config *cfg, int T,
                              const pl_train_opts *o, pl_error *err);
void pl_trainer_free(pl_trainer *tr);
float *pl_trainer_params(pl_trainer *tr);      /* (n_params) */
const float *pl_trainer_grad(const pl_trainer *tr); /* last reduced gradient */
const pl_config *pl_trainer_config(const pl_trainer *tr);
int pl_trainer_workers(const pl_trainer *tr);
int pl_trainer_threads(const pl_trainer *tr);
/* Bytes of its buffers (workspaces with every step's activations for
 * backpropagation through time, parameters, gradients, Adam's moments). */
double pl_trainer_bytes(const pl_trainer *tr);
int pl_trainer_ranks(const pl_trainer *tr);
/* The slice of the parameters whose Adam moments this rank keeps:
 * [*offset, *offset + *count) (all of them with one rank). */
void pl_trainer_shard(const pl_trainer *tr, size_t *offset, size_t *count);

typedef struct {
    double loss;     /* mean cross-entropy over the batch */
    int correct;     /* rows classified right */
    double grad_norm;/* global gradient norm before clipping */
    float lr;        /* rate used */
    int stop;        /* the stop flag (pl_trainer_watch_stop) agreed by the
                        ranks at this step: the first rank's nonzero value,
                        or 0; every rank sees the same */
} pl_step_stats;

/* Loss and mean gradient of the batch idx[0..n) of ds into the trainer's
 * gradient buffer, without updating the parameters. */
pl_status pl_trainer_gradient(pl_trainer *tr, const pl_dataset *ds,
                              const uint32_t *idx, int n, pl_step_stats *st,
                              pl_error *err);
/* One training step: gradient, clipping, schedule, Adam. step is 0-based
 * and total the planned number of steps (for the schedule). */
pl_status pl_trainer_step(pl_trainer *tr, const pl_dataset *ds,
                          const uint32_t *idx, int n, long step, long total,
                          pl_step_stats *st, pl_error *err);
/* A flag (a signal handler's) that the ranks agree on at every step and
 * report in pl_step_stats.stop, so that all stop after the same step.
 * NULL: none. */
void pl_trainer_watch_stop(pl_trainer *tr, volatile sig_atomic_t *flag);
/* Every rank: whether all ranks hold bitwise the same parameters (a CRC32
 * compared across ranks; the steps also compare it every 100 steps and
 * fail with PL_ERR_MISMATCH when they differ). */
pl_status pl_trainer_check_ranks(pl_trainer *tr, pl_error *err);
/* Adam's moments and step count (the state beyond the parameters). The
 * moments cover this rank's slice (pl_trainer_shard): moment1(tr)[i] is
 * that of parameter offset + i. */
float *pl_trainer_moment1(pl_trainer *tr);
float *pl_trainer_moment2(pl_trainer *tr);
/* Loads a whole state (params, m, v: 3 x n_params, as pl_checkpoint_load
 * gives it) and Adam's step count: the parameters and this rank's slice. */
void pl_trainer_set_state(pl_trainer *tr, const float *state, long adam_steps);
long pl_trainer_adam_steps(const pl_trainer *tr);
void pl_trainer_set_adam_steps(pl_trainer *tr, long t);
const pl_train_opts *pl_trainer_opts(const pl_trainer *tr);

/* ----------------------------------------------------------- checkpoints */

/* What a checkpoint records besides the trainer's buffers: the run. */
typedef struct {
    pl_config cfg;
    int T;               /* time steps of the data */
    pl_train_opts opts;  /* the run's options (workers/threads as resolved) */
    long step;           /* steps done */
    long total;          /* steps planned */
    long val;            /* held-out validation images */
    uint64_t n_train;    /* training images */
    uint32_t data_crc;   /* CRC32 of the training images and labels */
    long adam_steps;     /* Adam's t (filled in by pl_checkpoint_save) */
    pl_sequence sequence; /* how the images were read (version 3 on) */
    int permuted;        /* pixels in the order of pl_dataset_permute(permute_seed) */
    uint64_t permute_seed;
    int normalize;       /* (version 5 on) 1: the values standardised with the
                            statistics of the training split (pl_dataset_norm_stats,
                            recomputed on resume); 0: as read */
} pl_ckpt_meta;

/* CRC32 of a data set's images and labels (identifies the data). */
uint32_t pl_dataset_crc(const pl_dataset *ds);
/* Writes params, Adam moments and step count of tr with meta, atomically:
 * magic "PLSTMCKP", version, the run, the buffers, CRC32 of the file.
 * With several ranks every rank calls it: rank 0 gathers the moments and
 * writes the file (guard is rank 0's), and every rank returns its status
 * and message. */
pl_status pl_checkpoint_save(const char *path, pl_trainer *tr,
                             const pl_ckpt_meta *meta, pl_write_guard *guard,
                             pl_error *err);
/* Reads the run into meta and the buffers into *state (3 x n_params floats:
 * params, m, v; free with pl_free). With several ranks every rank calls it:
 * rank 0 reads the file and sends the run, the state or the error to all. */
pl_status pl_checkpoint_load(const char *path, pl_ckpt_meta *meta, float **state,
                             pl_error *err);

/* The shuffled order of n training items for epoch `epoch` (0-based) of a
 * run seeded with seed: a function of (seed, epoch) alone, so a resumed run
 * sees the same order. */
void pl_epoch_order(uint64_t seed, long epoch, uint32_t *order, size_t n);

/* Phase times summed over the steps since the last reset, averaged over
 * workers (seconds). Profiling is on when opts.profile is set. */
void pl_trainer_profile(const pl_trainer *tr, double seconds[PL_NPHASE], long *steps);
void pl_trainer_profile_reset(pl_trainer *tr);

/* Accuracy and mean loss over a whole labelled data set. */
pl_status pl_trainer_evaluate(pl_trainer *tr, const pl_dataset *ds,
                              double *accuracy, double *loss, pl_error *err);
/* Class probabilities (softmax of the logits) of every item of ds, labelled
 * or not, into probs (ds->n, C). */
pl_status pl_trainer_predict(pl_trainer *tr, const pl_dataset *ds, float *probs,
                             pl_error *err);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
