/*
 * tpmm.h — tensor-parallel fused collective matmul on CPUs.
 *
 * The one public header of libtpmm. tpmm implements MindSpore's
 * all_gather_matmul on MPI ranks:
 *
 *     output     = allgather(input) @ x2 (+ bias)    (m*W, n)
 *     gather_out = allgather(input)                   (m*W, k)
 *
 * Conventions used by every function below:
 *  - Every function returns a tpmm_status_t. On failure, tpmm_last_error()
 *    returns a message naming the argument and its value, for the calling
 *    thread. The library never prints, aborts or exits.
 *  - "Collective over G" means every rank of group G must make the call, in
 *    the same order with respect to other collective calls on G.
 *  - Tensors are borrowed: the caller owns the memory; the library never keeps
 *    a pointer to caller data after a call returns (plans keep their own copy
 *    of x2).
 *  - Thread safety: group management (init, finalize, create/destroy group)
 *    must not run concurrently with any other tpmm call. Operations on
 *    *different* groups may run concurrently from different threads (tpmm asks
 *    MPI for MPI_THREAD_MULTIPLE). Two concurrent operations on the *same*
 *    group are not allowed (MPI's collective ordering rule).
 */
#ifndef TPMM_H
#define TPMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TPMM_BUILDING) && defined(__GNUC__)
#define TPMM_API __attribute__((visibility("default")))
#else
#define TPMM_API
#endif

/* ---- version ------------------------------------------------------------ */
#define TPMM_VERSION_MAJOR 0
#define TPMM_VERSION_MINOR 1
#define TPMM_VERSION_PATCH 0
#define TPMM_VERSION_NUMBER (TPMM_VERSION_MAJOR * 10000 + TPMM_VERSION_MINOR * 100 + TPMM_VERSION_PATCH)

/* "MAJOR.MINOR.PATCH" of the library actually linked. Local, thread-safe. */
TPMM_API const char *tpmm_version(void);

/* ---- status ------------------------------------------------------------- */
/* Values are pinned: they never change between releases. */
typedef enum {
  TPMM_SUCCESS = 0,
  TPMM_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, value out of its range    */
  TPMM_ERR_DTYPE = 2,            /* dtype unsupported or inconsistent       */
  TPMM_ERR_SHAPE = 3,            /* ndim, dims or strides inconsistent      */
  TPMM_ERR_UNSUPPORTED = 4,      /* valid request tpmm does not do (yet)    */
  TPMM_ERR_GROUP = 5,            /* group unknown, or this rank not in it   */
  TPMM_ERR_WORLD_SIZE = 6,       /* world_size differs from the group size  */
  TPMM_ERR_MISMATCH = 7,         /* ranks passed different collective args  */
  TPMM_ERR_NOT_INITIALIZED = 8,  /* before tpmm_init or after finalize      */
  TPMM_ERR_COMM = 9,             /* MPI failed; the message has MPI's text  */
  TPMM_ERR_NO_MEMORY = 10,       /* an allocation failed                    */
  TPMM_ERR_TIMEOUT = 11,         /* a peer did not arrive within the limit  */
  TPMM_ERR_INTERNAL = 12         /* a bug in tpmm: please report it         */
} tpmm_status_t;

/* Short fixed description of a status ("invalid argument"). Never NULL.
 * Local, thread-safe. */
TPMM_API const char *tpmm_status_string(tpmm_status_t s);

/* The calling thread's detail message for its last failed tpmm call, e.g.
 * "tpmm_all_gather_matmul: x2: k=128 does not match input k=256".
 * "" if the thread's last call succeeded or it never called. Valid until the
 * thread's next tpmm call. Local, thread-safe (per-thread storage). */
TPMM_API const char *tpmm_last_error(void);

/* ---- tensors ------------------------------------------------------------ */
typedef enum { TPMM_FLOAT16 = 1, TPMM_BFLOAT16 = 2, TPMM_FLOAT32 = 3 } tpmm_dtype_t;

/* Size in bytes of one element of dt; 0 for a value outside the enum. */
TPMM_API size_t tpmm_dtype_size(tpmm_dtype_t dt);

typedef struct tpmm_tensor {
  void *data; /* borrowed: the caller owns it                       */
  tpmm_dtype_t dtype;
  int ndim;         /* 2 for matrices, 1 for bias                         */
  int64_t shape[2]; /* as stored in memory, row-major                     */
  int64_t ld;       /* row stride in elements; 0 means dense (shape[1])   */
} tpmm_tensor_t;

/* ---- library and groups ------------------------------------------------- */
#define TPMM_WORLD_COMM_GROUP "tpmm_world_group"
#define TPMM_GROUP_NAME_MAX 127 /* longest group name, in bytes */

/* Initialise tpmm. Collective over MPI_COMM_WORLD. Calls MPI_Init_thread
 * (asking for MPI_THREAD_MULTIPLE) unless the application already initialised
 * MPI; argc/argv may be NULL. Reads the TPMM_* environment tunables. Creates
 * the group TPMM_WORLD_COMM_GROUP. Calling it twice without finalize returns
 * TPMM_ERR_INVALID_ARGUMENT and changes nothing. Not thread-safe. */
TPMM_API tpmm_status_t tpmm_init(int *argc, char ***argv);

/* Destroy every group and plan-independent workspace; finalize MPI if and only
 * if tpmm_init initialised it. Collective over the world. Not thread-safe.
 * Re-initialising after finalize works only if the application owns MPI. */
TPMM_API tpmm_status_t tpmm_finalize(void);

/* Rank of the caller within group / size of group. Local, thread-safe. */
TPMM_API tpmm_status_t tpmm_get_rank(const char *group, int *rank);
TPMM_API tpmm_status_t tpmm_get_group_size(const char *group, int *size);

/* Create the named group of the n world ranks listed (in that order: group
 * rank i is world_ranks[i]). Collective over the listed ranks only; ranks not
 * listed must not call. Errors: duplicate or out-of-range ranks, caller not
 * listed, name empty / too long / already taken. Not thread-safe. */
TPMM_API tpmm_status_t tpmm_create_group(const char *group, int n, const int *world_ranks);

/* Destroy a group created by tpmm_create_group (or tpmm_group_from_comm).
 * Collective over the group. The world group cannot be destroyed. */
TPMM_API tpmm_status_t tpmm_destroy_group(const char *group);

/* ---- all_gather_matmul -------------------------------------------------- */
typedef struct tpmm_all_gather_matmul_opts {
  const tpmm_tensor_t *bias; /* NULL, or 1-D (n,) of input's dtype or FLOAT32 */
  int gather_index;          /* 0: gather input; 1: gather x2 (see _v below)   */
  bool gather_output;        /* write gather_out                               */
  int comm_turn;             /* 0: automatic; N>=1: N chunks per rank's shard */
  bool trans_input;          /* input stored (k, m)                            */
  bool trans_x2;             /* x2 stored (n, k)                               */
} tpmm_all_gather_matmul_opts_t;
/* comm_turn N >= 1 forces N chunks of each shard, at least a row each: N up to
 * the largest shard's rows (m; x2's k_r with gather_index 1), or 1 when every
 * shard is empty; larger or negative is TPMM_ERR_INVALID_ARGUMENT on every
 * rank. A decode call of a row per rank takes comm_turn 0 or 1. */

#define TPMM_ALL_GATHER_MATMUL_OPTS_INIT \
  { NULL, 0, true, 0, false, false }

/* output = allgather(input) @ x2 (+ bias); gather_out = allgather(input).
 *
 * input: (m, k) stored, or (k, m) when trans_input; x2: (k, n), or (n, k) when
 * trans_x2; same dtype (FLOAT16, BFLOAT16 or FLOAT32). output (m*W, n) and
 * gather_out (m*W, k) are caller-allocated with the input's dtype; row blocks
 * are in group-rank order. Accumulation is fp32 with one rounding (nearest
 * even) to the output dtype, bias added before it. (bf16 runs on tpmm's own
 * kernels where the CPU has AMX or, with trans_x2 and a few rows,
 * AVX512-BF16, elsewhere on oneDNN: each orders its sums its own way;
 * README, Known limits.) gather_out is a bit-exact
 * copy of the gathered rows; when gather_output is false it is neither read
 * nor written and may be NULL. opts NULL means TPMM_ALL_GATHER_MATMUL_OPTS_INIT.
 *
 * gather_index 1 gathers x2 instead: x2 is this rank's (k, n) shard ((n, k)
 * with trans_x2), input is (W*k, ...): (m, W*k) or (W*k, m) with trans_input;
 * output (m, n) = input @ gathered x2 (+ bias), gather_out (W*k, n) the
 * gathered x2 in that orientation. The fp32 sum runs over the shards in
 * group-rank order (each shard in panels of 1024 rows, in order), one rounding:
 * every schedule and comm_turn gives the same bits.
 *
 * Collective over group: every rank passes the same shapes, dtypes and opts,
 * and world_size equal to the group's size. If ranks disagree, every rank
 * returns TPMM_ERR_MISMATCH before any data moves and nothing is written. If
 * one rank's arguments are invalid, every rank returns that rank's status and
 * message (prefixed with the failing rank). */
TPMM_API tpmm_status_t tpmm_all_gather_matmul(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                              int world_size, const tpmm_all_gather_matmul_opts_t *opts,
                                              tpmm_tensor_t *output, tpmm_tensor_t *gather_out);

/* ---- persistent plans --------------------------------------------------- */
/* A plan fixes everything but the input's values for repeated calls with the
 * same weights (a layer called every step): x2 is packed once (a copy: the
 * caller may free or change x2 afterwards; rebuild the plan to change the
 * weights), bias copied, workspaces, shared windows, GEMM primitives and the
 * chunking are kept. */
typedef struct tpmm_plan tpmm_plan_t;

/* Create a plan. input, output and gather_out give shapes, dtypes and
 * strides (their data pointers may be NULL here: execute supplies them);
 * x2 and opts->bias must hold data. Collective over group, with the same
 * agreement rules as tpmm_all_gather_matmul. *plan is NULL on failure. */
TPMM_API tpmm_status_t tpmm_all_gather_matmul_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                          const char *group, int world_size,
                                                          const tpmm_all_gather_matmul_opts_t *opts,
                                                          const tpmm_tensor_t *output, const tpmm_tensor_t *gather_out,
                                                          tpmm_plan_t **plan);

/* Run the planned operation on new data. The tensors must have the shapes,
 * dtypes and strides the plan was made with (checked locally: a difference
 * is TPMM_ERR_SHAPE / TPMM_ERR_DTYPE on that rank, and the agreement step
 * makes every rank return an error). Collective over the plan's group. */
TPMM_API tpmm_status_t tpmm_plan_execute(tpmm_plan_t *plan, const tpmm_tensor_t *input, tpmm_tensor_t *output,
                                         tpmm_tensor_t *gather_out);

/* Free a plan (NULL is a no-op). Local; must happen before tpmm_finalize or
 * before destroying the plan's group. */
TPMM_API void tpmm_plan_destroy(tpmm_plan_t *plan);

/* ---- all_gather_matmul: uneven shards and several weights --------------- */
/* As tpmm_all_gather_matmul, with counts[q] = the gathered extent of group rank q (rows of input for
 * gather_index 0, rows k_q of x2 for gather_index 1), any value >= 0, the same array on every rank
 * (else TPMM_ERR_MISMATCH); counts[own rank] must equal the local extent (else TPMM_ERR_SHAPE).
 * Output / gather_out have sum(counts) rows (gather_index 0) or gather_out sum(counts) rows of x2
 * (gather_index 1), blocks in group-rank order. */
TPMM_API tpmm_status_t tpmm_all_gather_matmul_v(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                                int world_size, const int64_t *counts,
                                                const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *output,
                                                tpmm_tensor_t *gather_out);
/* One gather, nb GEMMs: output[i] = allgather(input) @ x2[i] (+ bias[i]); 1 <= nb <= 16; every x2[i] is
 * (k, n_i) (or (n_i, k) with trans_x2), same dtype; bias NULL or nb entries each NULL or (n_i,);
 * opts->bias must be NULL; gather_index 0 only. output[i] is bit-identical to tpmm_all_gather_matmul
 * with x2[i] alone. */
TPMM_API tpmm_status_t tpmm_all_gather_matmul_multi(const tpmm_tensor_t *input, int nb, const tpmm_tensor_t *const *x2,
                                                    const tpmm_tensor_t *const *bias, const char *group, int world_size,
                                                    const tpmm_all_gather_matmul_opts_t *opts,
                                                    tpmm_tensor_t *const *output, tpmm_tensor_t *gather_out);
/* Plans of both, with the one-shot's arguments (output/gather_out give shapes). Collective. */
TPMM_API tpmm_status_t tpmm_all_gather_matmul_v_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                            const char *group, int world_size, const int64_t *counts,
                                                            const tpmm_all_gather_matmul_opts_t *opts,
                                                            const tpmm_tensor_t *output,
                                                            const tpmm_tensor_t *gather_out, tpmm_plan_t **plan);
TPMM_API tpmm_status_t tpmm_all_gather_matmul_multi_plan_create(
    const tpmm_tensor_t *input, int nb, const tpmm_tensor_t *const *x2, const tpmm_tensor_t *const *bias,
    const char *group, int world_size, const tpmm_all_gather_matmul_opts_t *opts, tpmm_tensor_t *const *output,
    tpmm_tensor_t *gather_out, tpmm_plan_t **plan);
/* Run a multi plan (tpmm_plan_execute on a multi plan returns TPMM_ERR_INVALID_ARGUMENT). Collective. */
TPMM_API tpmm_status_t tpmm_plan_execute_multi(tpmm_plan_t *plan, const tpmm_tensor_t *input,
                                               tpmm_tensor_t *const *output, tpmm_tensor_t *gather_out);

/* ---- GEMM + reduce: the sibling ops ------------------------------------- */
typedef enum { TPMM_REDUCE_SUM = 0, TPMM_REDUCE_AVG = 1 } tpmm_reduce_op_t;

typedef struct tpmm_matmul_reduce_opts {
  const tpmm_tensor_t *bias;  /* NULL, or 1-D (n,) of input's dtype or FLOAT32; added once, after the reduction
                                 (all_reduce: the same values on every rank, else TPMM_ERR_MISMATCH) */
  tpmm_reduce_op_t reduce_op; /* SUM, or AVG = sum / world_size                                             */
  int comm_turn;              /* 0: automatic; N>=1: N chunks                                                */
  bool trans_input;           /* input stored (k, m)                                                         */
  bool trans_x2;              /* x2 stored (n, k)                                                            */
} tpmm_matmul_reduce_opts_t;
/* comm_turn N >= 1 forces N chunks of each destination's rows (reduce_scatter)
 * or of the rows (all_reduce), at least a row each: N up to max(m/W, 1) resp.
 * max(m, 1); larger or negative is TPMM_ERR_INVALID_ARGUMENT on every rank. */

#define TPMM_MATMUL_REDUCE_OPTS_INIT \
  { NULL, TPMM_REDUCE_SUM, 0, false, false }
/* opts NULL: TPMM_MATMUL_REDUCE_OPTS_INIT. */

/* output (m/W, n) = rows [r*m/W, (r+1)*m/W) of  sum over group ranks q of input_q @ x2_q  (+ bias), r = own rank.
 * m must be a multiple of W (else TPMM_ERR_SHAPE on every rank). Collective over group. */
TPMM_API tpmm_status_t tpmm_matmul_reduce_scatter(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                  const char *group, int world_size,
                                                  const tpmm_matmul_reduce_opts_t *opts, tpmm_tensor_t *output);
/* output (m, n) = sum over group ranks q of input_q @ x2_q (+ bias), on every rank. Collective over group. */
TPMM_API tpmm_status_t tpmm_matmul_all_reduce(const tpmm_tensor_t *input, const tpmm_tensor_t *x2, const char *group,
                                              int world_size, const tpmm_matmul_reduce_opts_t *opts,
                                              tpmm_tensor_t *output);
/* Plans of both; run with tpmm_plan_execute(plan, input, output, NULL) (a gather_out
 * there is neither read nor written).
 * (bf16 multiplies on tpmm's own kernels where the CPU has them, as
 * all_gather_matmul does: README, Known limits.) */
TPMM_API tpmm_status_t tpmm_matmul_reduce_scatter_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                              const char *group, int world_size,
                                                              const tpmm_matmul_reduce_opts_t *opts,
                                                              const tpmm_tensor_t *output, tpmm_plan_t **plan);
TPMM_API tpmm_status_t tpmm_matmul_all_reduce_plan_create(const tpmm_tensor_t *input, const tpmm_tensor_t *x2,
                                                          const char *group, int world_size,
                                                          const tpmm_matmul_reduce_opts_t *opts,
                                                          const tpmm_tensor_t *output, tpmm_plan_t **plan);

/* Allocate bytes in this node's shared window of group (a symmetric buffer):
 * input tensors whose data lies there are published to node peers without a
 * copy by shm_pull. Collective over group (every rank asks for the same
 * bytes). Free with tpmm_free_shared before destroying the group. */
TPMM_API tpmm_status_t tpmm_alloc_shared(const char *group, size_t bytes, void **ptr);
TPMM_API tpmm_status_t tpmm_free_shared(void *ptr);

/* ---- tunables ----------------------------------------------------------- */
/* Process-wide knobs, with defaults from the environment variable named in
 * brackets (read by tpmm_init). Set them between calls, not during one. */
typedef enum {
  TPMM_PARAM_ALGO = 1,            /* [TPMM_ALGO] a tpmm_algo_t               */
  TPMM_PARAM_NUM_THREADS = 2,     /* [TPMM_NUM_THREADS] GEMM threads per rank */
  TPMM_PARAM_TIMEOUT_MS = 3,      /* [TPMM_TIMEOUT_MS] 0 = wait forever       */
  TPMM_PARAM_PROGRESS_THREAD = 4, /* [TPMM_PROGRESS_THREAD] 0: polls between GEMM
                                     tiles, 1: a thread drives MPI, 2 (default):
                                     the thread when the group spans nodes and
                                     tiles would be longer than 2 ms, or the
                                     transfer is long against the GEMM
                                     (gather_index 1, the reduce operators) */
  TPMM_PARAM_SEND_WINDOW = 5,     /* [TPMM_SEND_WINDOW] ring messages in flight
                                     per link direction; 0 = all at once (default 2) */
  TPMM_PARAM_SEGMENT_BYTES = 6,   /* [TPMM_SEGMENT_BYTES] largest ring message;
                                     0 = one message per chunk (default 256 KiB) */
  TPMM_PARAM_PROGRESS_NAP_US = 7, /* [TPMM_PROGRESS_NAP_US] the progress thread's
                                     sleep between polls; -1 (default): 300 when
                                     the transfer is the longer part of the call,
                                     1000 when the GEMM is */
  TPMM_PARAM_GEMM = 8             /* [TPMM_GEMM] a tpmm_gemm_t: the GEMM backend */
} tpmm_param_t;

typedef enum {
  TPMM_ALGO_AUTO = 0,       /* "auto": topology + cost model                     */
  TPMM_ALGO_UNFUSED = 1,    /* "unfused": MPI_Allgather, then one GEMM            */
  TPMM_ALGO_RING = 2,       /* "ring": chunked ring, GEMM on chunk i while i+1 moves */
  TPMM_ALGO_BIDIR_RING = 3, /* "bidir_ring": half of each shard each way     */
  TPMM_ALGO_SHM_PULL = 4,   /* "shm_pull": zero-copy reads from shared windows  */
  TPMM_ALGO_HIER = 5        /* "hier": messages across nodes per rail, shared windows within */
} tpmm_algo_t;

/* GEMM backends (TPMM_PARAM_GEMM; TPMM_GEMM by name). A dtype the chosen
 * backend cannot compute runs on the reference backend. */
typedef enum {
  TPMM_GEMM_DNNL = 0, /* "dnnl": oneDNN matmul (default)                      */
  TPMM_GEMM_REF = 1   /* "ref": the portable reference GEMM, every dtype      */
} tpmm_gemm_t;

/* Set / read a tunable. Out-of-range values return TPMM_ERR_INVALID_ARGUMENT
 * naming the parameter and value. Local; not thread-safe against running ops. */
TPMM_API tpmm_status_t tpmm_set_param(tpmm_param_t p, int64_t value);
TPMM_API tpmm_status_t tpmm_get_param(tpmm_param_t p, int64_t *value);
/* Inclusive bounds of a tunable. */
TPMM_API tpmm_status_t tpmm_param_bounds(tpmm_param_t p, int64_t *lo, int64_t *hi);

/* Name of an algorithm ("ring"), or NULL outside the enum. */
TPMM_API const char *tpmm_algo_name(tpmm_algo_t a);
/* Name of a GEMM backend ("dnnl", "ref"), or NULL outside the enum. */
TPMM_API const char *tpmm_gemm_name(tpmm_gemm_t g);

#ifdef __cplusplus
}
#endif
#endif /* TPMM_H */
