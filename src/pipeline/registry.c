/*
 * registry.c — the operators and the algorithms each offers, by tpmm_algo_t.
 * Adding an algorithm: a new algo_*.c defining its tpi_algo_t, and one line
 * here; adding an operator: its op_*.c and its tpi_opdesc_t here.
 */
#include "pipeline.h"
#include "reduce.h"

extern const tpi_algo_t tpi_algo_unfused, tpi_algo_ring, tpi_algo_bidir_ring, tpi_algo_shm_pull, tpi_algo_hier;

static const tpi_algo_t *const all_gather_matmul[] = {
    [TPMM_ALGO_UNFUSED] = &tpi_algo_unfused,
    [TPMM_ALGO_RING] = &tpi_algo_ring,
    [TPMM_ALGO_BIDIR_RING] = &tpi_algo_bidir_ring,
    [TPMM_ALGO_SHM_PULL] = &tpi_algo_shm_pull,
    [TPMM_ALGO_HIER] = &tpi_algo_hier,
};

const tpi_opdesc_t tpi_op_all_gather_matmul = {
    .name = "all_gather_matmul",
    .kind = TPI_OP_ALL_GATHER_MATMUL,
    .algos = all_gather_matmul,
    .nalgos = (int)(sizeof all_gather_matmul / sizeof all_gather_matmul[0]),
    .baseline = TPMM_ALGO_UNFUSED,
    .validate = tpi_agmm_validate_args,
    .fields = tpi_agmm_fields_args,
    .prepare = tpi_agmm_prepare,
    .sizes = tpi_agmm_sizes,
};

extern const tpi_algo_t tpi_algo_red_unfused, tpi_algo_red_shm, tpi_algo_red_ring, tpi_algo_red_hier;

/* Both reduce operators run the same schedules (each asks tpi_red_all). */
static const tpi_algo_t *const matmul_reduce[] = {
    [TPMM_ALGO_UNFUSED] = &tpi_algo_red_unfused,
    [TPMM_ALGO_RING] = &tpi_algo_red_ring,
    [TPMM_ALGO_SHM_PULL] = &tpi_algo_red_shm,
    [TPMM_ALGO_HIER] = &tpi_algo_red_hier,
};

const tpi_opdesc_t tpi_op_matmul_reduce_scatter = {
    .name = "matmul_reduce_scatter",
    .kind = TPI_OP_MATMUL_REDUCE_SCATTER,
    .algos = matmul_reduce,
    .nalgos = (int)(sizeof matmul_reduce / sizeof matmul_reduce[0]),
    .baseline = TPMM_ALGO_UNFUSED,
    .validate = tpi_mmr_validate_rs,
    .fields = tpi_mmr_fields_args,
    .prepare = tpi_mmr_prepare,
    .sizes = tpi_mmr_sizes,
};

const tpi_opdesc_t tpi_op_matmul_all_reduce = {
    .name = "matmul_all_reduce",
    .kind = TPI_OP_MATMUL_ALL_REDUCE,
    .algos = matmul_reduce,
    .nalgos = (int)(sizeof matmul_reduce / sizeof matmul_reduce[0]),
    .baseline = TPMM_ALGO_UNFUSED,
    .validate = tpi_mmr_validate_ar,
    .fields = tpi_mmr_fields_args_ar,
    .prepare = tpi_mmr_prepare,
    .sizes = tpi_mmr_sizes,
};

const tpi_opdesc_t *tpi_op_by_kind(int64_t kind) {
  static const tpi_opdesc_t *const ops[] = {&tpi_op_all_gather_matmul, &tpi_op_matmul_reduce_scatter,
                                            &tpi_op_matmul_all_reduce};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (ops[i]->kind == kind) return ops[i];
  return NULL;
}

const tpi_algo_t *tpi_algo_get(const tpi_opdesc_t *op, int id) {
  return id >= 0 && id < op->nalgos ? op->algos[id] : NULL;
}
