/*
 * test_tuner.c — the autotuner's decision (src/pipeline/tune.c) from
 * synthetic call times: it compares the two candidates pair by pair (two
 * calls in a row), so a change of the machine's speed between pairs does
 * not decide, and a pair with a failed call is dropped whole; the model's
 * predicted ratio weighs as much as the median pair.
 *
 * Drives tpi_tuner_pick / tpi_tuner_ran / tpi_tuner_record as a call
 * sequence does (each call records the previous call's time, the slowest
 * rank's); no MPI traffic.
 *
 *   mpirun -n 1 test_tuner
 */
#include "src/pipeline/pipeline.h"
#include "testutil.h"

#define FAIL (-1.0)

/* Runs calls with the given times (seconds, FAIL for a call that failed) for
 * the candidate each call picks; returns the winner, -1 if undecided. */
static int run_calls(const double *time_of_pick0, const double *time_of_pick1, int ncalls, int64_t prior_pm,
                     int *calls_used) {
  const tpi_call_t a = {.m = 1, .k = 1, .n = 1};
  const tpi_cand_t cand[2] = {{TPMM_ALGO_UNFUSED, 1, 0}, {TPMM_ALGO_RING, 4, 0}};
  tpi_tuner_t t;
  tpi_tuner_init(&t, cand, 2, prior_pm, &a);
  tpi_group_t g = {.rank = 0};
  int i0 = 0, i1 = 0, call = 0;
  for (; call < ncalls && !t.decided; call++) {
    /* the call's agreement carries the previous call's time */
    tpi_tuner_record(&t, tpi_tuner_report(&t), &g);
    if (t.decided) break;
    const int c = tpi_tuner_pick(&t);
    const double e = c == 0 ? time_of_pick0[i0++] : time_of_pick1[i1++];
    tpi_tuner_ran(&t, c, e != FAIL, e != FAIL ? e : 0);
  }
  *calls_used = call;
  return t.decided ? t.winner : -1;
}

int main(int argc, char **argv) {
  int rank, W, used;
  test_init(&argc, &argv, &rank, &W);
  if (rank == 0) {
    /* Each list: the warm-up call, then one time per pair. */
    test_case("a speed change between pairs does not decide", 10);
    { /* the runner-up is 10 % slower in pairs 0 and 1, the machine then runs
       * twice as fast for pair 2 and the runner-up's call in it comes out
       * 10 % faster: each candidate's best would pick the runner-up */
      const double t0[] = {1, 0.020, 0.020, 0.010}, t1[] = {1, 0.022, 0.022, 0.009};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 0, "winner %d, want 0 (the model's choice: slower in one pair of three)", w);
      check(used == TPI_TUNE_CALLS - 1, "decided after %d calls, want %d", used, TPI_TUNE_CALLS - 1);
    }
    test_case("a runner-up faster in two pairs of three wins", 10);
    {
      const double t0[] = {1, 0.020, 0.010, 0.010}, t1[] = {1, 0.018, 0.009, 0.011};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 1, "winner %d, want 1", w);
    }
    test_case("within 2 % the model's choice stays", 10);
    {
      const double t0[] = {1, 0.0100, 0.0100, 0.0100}, t1[] = {1, 0.0099, 0.0099, 0.0099};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 0, "winner %d, want 0", w);
    }
    test_case("a failed call drops its pair, later pairs stay adjacent", 10);
    { /* the runner-up's call of pair 0 fails while the machine speeds up
       * pair by pair; kept, its partner would pair each model-choice call
       * with the runner-up's call of the next, faster pair */
      const double t0[] = {1, 0.040, 0.020, 0.010, 0.005}, t1[] = {1, FAIL, 0.022, 0.011, 0.0055};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 0, "winner %d, want 0 (the runner-up is 10 %% slower in every whole pair)", w);
      check(used == TPI_TUNE_CALLS + 1, "decided after %d calls, want %d (one pair more)", used, TPI_TUNE_CALLS + 1);
    }
    test_case("a failed first call of a pair drops its partner", 10);
    {
      const double t0[] = {1, FAIL, 0.010, 0.010, 0.010}, t1[] = {1, 0.001, 0.011, 0.011, 0.011};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 0, "winner %d, want 0 (the runner-up's 0.001 had no partner)", w);
    }
    /* The model's predicted ratio weighs as much as the median pair (tune.c). */
    test_case("a runner-up predicted 34 % slower stays out on an 11 % median win", 10);
    { /* the times of a 10 Gbit reduce_scatter whose runner-up ran 18 % slower after */
      const double t0[] = {1, 0.0219, 0.0203, 0.0171}, t1[] = {1, 0.0194, 0.0180, 0.0194};
      check(run_calls(t0, t1, 20, 0, &used) == 1, "without a prior the 11 %% median win decides");
      const int w = run_calls(t0, t1, 20, 1340, &used);
      check(w == 0, "winner %d, want 0 (sqrt(0.888 * 1.34) = 1.09)", w);
    }
    /* A runner-up TPI_TUNE_CLEAR slower in every pair so far ends the exploration. */
    test_case("a runner-up 26 % slower in its first pair leaves after it", 10);
    { /* a one-shot m = 16, k = 8192, n = 2048 fp32 call on W = 2 (shm_pull against unfused, predicted 1.19) */
      const double t0[] = {1, 0.0289, 0.0283, 0.0276}, t1[] = {1, 0.0365, 0.0359, 0.0359};
      const int w = run_calls(t0, t1, 20, 1188, &used);
      check(w == 0, "winner %d, want 0", w);
      check(used == TPI_TUNE_CALLS - 1 - 2 * (TPI_TUNE_SAMPLES - 1), "decided after %d calls, want %d", used,
            TPI_TUNE_CALLS - 1 - 2 * (TPI_TUNE_SAMPLES - 1));
      /* pairs 6 % slower are not clear, whatever the prediction: all three run */
      const double u1[] = {1, 0.0306, 0.0300, 0.0290};
      run_calls(t0, u1, 20, 1300, &used);
      check(used == TPI_TUNE_CALLS - 1, "pairs 6 %% slower: decided after %d calls, want %d", used, TPI_TUNE_CALLS - 1);
    }
    test_case("a win, a clear loss and a win: the runner-up wins", 10);
    { /* the loss in pair 1 does not end the exploration: pair 0 was a win */
      const double t0[] = {1, 0.0200, 0.0200, 0.0200}, t1[] = {1, 0.0180, 0.0250, 0.0180};
      const int w = run_calls(t0, t1, 20, 0, &used);
      check(w == 1 && used == TPI_TUNE_CALLS - 1, "winner %d after %d calls, want 1 after %d", w, used,
            TPI_TUNE_CALLS - 1);
    }
    test_case("a runner-up predicted 5 % slower wins all three pairs (median 16 %)", 10);
    {
      const double t0[] = {1, 0.0774, 0.0792, 0.0727}, t1[] = {1, 0.0650, 0.0666, 0.0657};
      const int w = run_calls(t0, t1, 20, 1054, &used);
      check(w == 1, "winner %d, want 1 (sqrt(0.84 * 1.054) = 0.94)", w);
    }
  }
  const int rc = finish("test_tuner");
  tpmm_finalize();
  return rc;
}
