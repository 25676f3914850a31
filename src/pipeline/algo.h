/*
 * algo.h — the algorithm registry: what an algorithm is, and the cost model's
 * inputs that every algorithm's prediction reads.
 *
 * An algorithm is one constant tpi_algo_t in its own file (algo_*.c). An
 * operator lists its algorithms in one table (registry.c), indexed by
 * tpmm_algo_t. Everything that asks "can this algorithm run here?" asks its
 * usable() (Open MPI coll's comm_query, NCCL's canConnect): the automatic
 * choice, a forced TPMM_ALGO, and tpi_plan_run before every execution.
 */
#ifndef TPMM_ALGO_H
#define TPMM_ALGO_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/common.h"
#include "../tensor/tensor.h"

struct tpi_plan;

/* The cost model's inputs for one plan (model.c). Times in seconds. */
typedef struct tpi_model {
  double g0, g1;      /* GEMM of M rows of the call's (k, n): g0 + M * g1 ... */
  double floor;       /* ... but never less than this (tpi_model_gemm; model.c says which) */
  double alpha, beta; /* an MPI transfer between neighbours: latency (s), bandwidth (bytes/s) */
  double beta_copy;   /* a copy within the node's memory (bytes/s): shm_pull's publishing */
  double cpu_byte;    /* what a byte this rank sends or receives over the link costs its GEMM (s); 0 in a node */
  double lag;         /* how late a ring answers MPI: half a GEMM tile, or the thread's nap */
  double fixed;       /* the progress thread's start, join and naps */
  double tile_s;      /* the time of a GEMM tile between two polls (s) */
  double t_xfer;      /* the shards' transfer over one link, unpipelined */
  double t_gemm;      /* the whole GEMM in one call */
  int64_t tile;       /* GEMM rows between two progress polls */
  int64_t msg_bytes;  /* a ring's largest message, each multiplied as it arrives; 0: chunks whole */
  int thread;         /* 1: a progress thread drives MPI in a ring */
  int nap_us;         /* the progress thread's sleep between polls */
} tpi_model_t;

/* The model's time of one GEMM call of `rows`: the arithmetic, or x2 read
 * from memory, whichever is longer (the two overlap: the loads stream). */
static inline double tpi_model_gemm(const tpi_model_t *m, double rows) {
  const double t = m->g0 + rows * m->g1;
  return t > m->floor ? t : m->floor;
}

/* Priorities returned by usable(): 0 = cannot run; above, the higher runs
 * first under TPMM_ALGO=auto (its prediction is then weighed against the
 * baseline's, tpi_choose). */
enum { TPI_UNUSABLE = 0 };

typedef struct tpi_algo {
  int id;     /* tpmm_algo_t, or a number past the public enum for an internal schedule */
  bool fused; /* overlaps communication with the GEMM (the baseline is not) */
  /* Can it run plan p on its group? 0 with a one-line reason in why (none when len is 0: the automatic
   * choice asks every call, and formatting reasons it never shows cost it 7 % at m = k = n = 1), else its
   * priority. */
  int (*usable)(const struct tpi_plan *p, char *why, size_t len);
  /* Predicted time of p with model m; *chunks: in, comm_turn (0: choose); out, the chunk count. */
  double (*predict)(const struct tpi_plan *p, const tpi_model_t *m, int *chunks);
  /* Run p on the data bound to it (outputs written on success). */
  tpmm_status_t (*run)(struct tpi_plan *p, const char *op);
} tpi_algo_t;

/* An operator: how its arguments are checked and agreed, what a plan of it
 * prepares, and its algorithms by tpmm_algo_t (entries may be NULL: not
 * offered). Adding an operator: its op_*.c (public entries and these hooks)
 * and its row in registry.c. */
typedef struct tpi_opdesc {
  const char *name;
  int kind; /* its value in the agreed field TPI_F_OP */
  const tpi_algo_t *const *algos;
  int nalgos;
  int baseline; /* the unfused schedule every fused one must match bit for bit */
  /* Check one rank's arguments (no communication); fill the call. */
  tpmm_status_t (*validate)(const char *op, const tpi_args_t *args, int group_size, int need_data, tpi_call_t *a);
  /* The collective fields, as far as the arguments can be read (never fails). */
  void (*fields)(const tpi_args_t *args, int64_t f[TPI_F_COUNT]);
  /* After validation, before the agreement: the GEMM and every workspace. */
  tpmm_status_t (*prepare)(struct tpi_plan *p, const char *op, int need_data);
  /* For the cost model: bytes one rank's data takes over one link, and the
   * rows of this rank's whole GEMM. */
  void (*sizes)(const struct tpi_plan *p, double *shard_bytes, int64_t *gemm_rows);
} tpi_opdesc_t;

enum { TPI_OP_ALL_GATHER_MATMUL = 1, TPI_OP_MATMUL_REDUCE_SCATTER = 2, TPI_OP_MATMUL_ALL_REDUCE = 3 };

extern const tpi_opdesc_t tpi_op_all_gather_matmul, tpi_op_matmul_reduce_scatter, tpi_op_matmul_all_reduce;

/* The algorithm id of op, or NULL when op does not offer it. */
const tpi_algo_t *tpi_algo_get(const tpi_opdesc_t *op, int id);
/* The operator of kind (TPI_OP_*), NULL if none. */
const tpi_opdesc_t *tpi_op_by_kind(int64_t kind);

/* The schedules that read peers in a shared window (shm_pull, and its form
 * for the reduce operators): usable when every rank is on one node
 * (algo_shm_pull.c). */
int tpi_shm_usable(const struct tpi_plan *p, char *why, size_t len);

/* Rings: predicted time of C chunks per shard (bidir: half each way) and the
 * best chunk count up to the automatic limit (model.c). */
double tpi_model_ring(const struct tpi_plan *p, const tpi_model_t *m, int bidir, int C);
double tpi_model_ring_best(const struct tpi_plan *p, const tpi_model_t *m, int bidir, int *chunks);

/* Most chunks per shard the model considers (a plan reserves for them). */
enum { TPI_MAX_AUTO_CHUNKS = 64 };

#endif
