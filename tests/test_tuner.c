/*
 * test_tuner.c — the autotuner's decision (src/pipeline/tune.c) from
 * synthetic call times: it compares the two candidates pair by pair (two
 * calls in a row), so a change of the machine's speed between pairs does
 * not decide, and a pair with a failed call is dropped whole; the model's
 * predicted ratio weighs as much as the median pair; a runner-up expected
 * slower runs only as often as keeps its excess within tpi_tune_budget of
 * the calls so far (first by the prediction, then by its pairs); a runner-up
 * faster in every pair, by 2 % in their median, that the prediction or a
 * pair won by under 2 % keeps out is confirmed, each candidate timed after a
 * call of its own.
 *
 * Drives tpi_tuner_pick / tpi_tuner_ran / tpi_tuner_record as a call
 * sequence does (each call records the previous call's time, the slowest
 * rank's); no MPI traffic.
 *
 *   mpirun -n 1 test_tuner
 */
#include <math.h>

#include "src/pipeline/pipeline.h"
#include "testutil.h"

#define FAIL (-1.0)

/* Runs calls for the candidate each call picks; returns the winner, -1 if undecided. Times (seconds, FAIL
 * for a failed call) by the runner-up's calls so far, j: its j-th call takes t1[j] (0: its warm-up, then one
 * per pair), and the model's choice's calls before it take t0[j], except that a FAIL fails only the first
 * of them (the next ones take t0[j + 1]). In confirming pairs (tune.c) every call of pair i takes entry
 * i + 1 of its candidate's list, times after_other[c] where candidate c runs right after the other one,
 * and the runner-up's call number fail_runner (counted from 0) fails. first: the runner-up's first call;
 * after_fail: its calls right after a failed call (each pairs with a timed call of the choice); confirm_at:
 * the tuner's first confirming pair (0: none); samples: the pairs' times as the tuner kept them. */
typedef struct {
  int used, first, after_fail, runner_calls, confirm_at;
  double samples[2][TPI_TUNE_SAMPLES_MAX];
} seq_t;
static int fail_runner = -1;
static double after_other[2] = {1, 1};
static int run_times(const double *t0, const double *t1, int len, int ncalls, int64_t prior_pm, seq_t *q) {
  const tpi_call_t a = {.m = 1, .k = 1, .n = 1};
  const tpi_cand_t cand[2] = {{TPMM_ALGO_UNFUSED, 1, 0}, {TPMM_ALGO_RING, 4, 0}};
  tpi_tuner_t t;
  tpi_tuner_init(&t, cand, 2, prior_pm, &a);
  tpi_group_t g = {.rank = 0};
  int call = 0, seg = -1, failed = 0, prev = -1;
  memset(q, 0, sizeof *q);
  q->first = -1;
  for (; call < ncalls && !t.decided; call++) {
    /* the call's agreement carries the previous call's time */
    tpi_tuner_record(&t, tpi_tuner_report(&t), &g);
    if (t.decided) break;
    const int c = tpi_tuner_pick(&t), j = t.confirm_at ? t.npairs + 1 : (int)t.runner_runs;
    if (j >= len || (c == 0 && !t.confirm_at && t0[j] == FAIL &&
                     j + 1 >= len)) { /* a case whose tuner asks for more pairs than it has times */
      check(0, "call %d wants the times of pair %d: the case gives %d", call, j - 1, len - 1);
      return -1;
    }
    double e;
    if (c == 1) {
      e = q->runner_calls == fail_runner ? FAIL : t1[j] * (t.confirm_at && prev == 0 ? after_other[1] : 1);
      if (q->first < 0) q->first = call;
      q->after_fail += failed;
      q->runner_calls++;
    } else {
      e = t0[j] == FAIL && seg == j ? t0[j + 1] : t0[j];
      if (t.confirm_at && prev == 1) e *= after_other[0];
      seg = j;
    }
    failed = e == FAIL;
    prev = c;
    q->confirm_at = t.confirm_at;
    tpi_tuner_ran(&t, c, e != FAIL, e != FAIL ? e : 0);
  }
  q->used = call;
  memcpy(q->samples, t.samples, sizeof q->samples);
  return t.decided ? t.winner : -1;
}

/* A case's times are two arrays of one length. */
#define run_calls(t0, t1, ncalls, prior_pm, q) run_times(t0, t1, (int)(sizeof(t1) / sizeof(t1)[0]), ncalls, prior_pm, q)

/* A decision as a case wants it: the winner, after how many runner-up calls, confirming from which pair (0: none). */
static void expect_decision(const char *what, int w, const seq_t *q, int want_w, int want_calls, int want_confirm) {
  check(w == want_w && q->runner_calls == want_calls && q->confirm_at == want_confirm,
        "%s: winner %d after %d runner-up calls, confirming from pair %d; want %d after %d, from %d", what, w,
        q->runner_calls, q->confirm_at, want_w, want_calls, want_confirm);
}

int main(int argc, char **argv) {
  int rank, W;
  seq_t q;
  test_init(&argc, &argv, &rank, &W);
  if (rank == 0) {
    /* Each list: the warm-up call, then one time per pair. */
    test_case("a speed change between pairs does not decide", 10);
    { /* the runner-up is 10 % slower in pairs 0 and 1, the machine then runs
       * twice as fast for pair 2 and the runner-up's call in it comes out
       * 10 % faster: each candidate's best would pick the runner-up */
      const double t0[] = {1, 0.020, 0.020, 0.010}, t1[] = {1, 0.022, 0.022, 0.009};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 0, "winner %d, want 0 (the model's choice: slower in one pair of three)", w);
    }
    test_case("a runner-up no slower runs every other call", 10);
    { /* warm-ups at calls 0 and 1, pairs at 2-3, 4-5, 6-7; call 8 hears of the last */
      const double t0[] = {1, 0.020, 0.020, 0.020}, t1[] = {1, 0.0195, 0.020, 0.0199};
      run_calls(t0, t1, 60, 1000, &q);
      check(q.first == 1 && q.used == TPI_TUNE_CALLS - 1, "runner-up first at call %d, decided after %d, want 1, %d",
            q.first, q.used, TPI_TUNE_CALLS - 1);
    }
    /* A replacement that one pair contradicts takes up to TPI_TUNE_SAMPLES_MAX pairs (tune.c). */
    test_case("a runner-up faster in two pairs of three, then in two more, wins after five", 10);
    {
      const double t0[] = {1, 0.020, 0.010, 0.010, 0.010, 0.010}, t1[] = {1, 0.018, 0.009, 0.011, 0.009, 0.009};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 1 && q.runner_calls == 1 + TPI_TUNE_SAMPLES_MAX, "winner %d after %d runner-up calls, want 1, %d", w,
            q.runner_calls, 1 + TPI_TUNE_SAMPLES_MAX);
    }
    test_case("a runner-up faster in two pairs of three, then slower in two more, stays out", 10);
    {
      const double t0[] = {1, 0.020, 0.010, 0.010, 0.010, 0.010}, t1[] = {1, 0.018, 0.009, 0.011, 0.011, 0.011};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 0 && q.runner_calls == 1 + TPI_TUNE_SAMPLES + 1,
            "winner %d after %d runner-up calls, want 0 after %d (median of four 1.0)", w, q.runner_calls,
            1 + TPI_TUNE_SAMPLES + 1);
    }
    test_case("one stall in three pairs does not replace the choice", 10);
    { /* a shared-memory reduce_scatter plan, unfused against shm_pull (bench/RESULTS.md §40.4): pair ratios
       * 0.942, 1.004, 0.608 gave a median of 0.942, and unfused then ran 1 % slower than shm_pull would have */
      const double t0[] = {1, 0.00200, 0.00200, 0.00200, 0.00200, 0.00200},
                   t1[] = {1, 0.00188, 0.00201, 0.00122, 0.00200, 0.00201};
      const int w = run_calls(t0, t1, 60, 1008, &q);
      /* the fourth pair brings the median to 0.97: not 2 % by the geometric mean with the prior */
      check(w == 0 && q.runner_calls == 1 + TPI_TUNE_SAMPLES + 1, "winner %d after %d runner-up calls, want 0, %d", w,
            q.runner_calls, 1 + TPI_TUNE_SAMPLES + 1);
    }
    test_case("within 2 % the model's choice stays", 10);
    {
      const double t0[] = {1, 0.0100, 0.0100, 0.0100}, t1[] = {1, 0.0099, 0.0099, 0.0099};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 0, "winner %d, want 0", w);
    }
    test_case("a failed call drops its pair, later pairs stay adjacent", 10);
    { /* the runner-up's call of pair 0 fails while the machine speeds up
       * pair by pair; kept, its partner would pair each model-choice call
       * with the runner-up's call of the next, faster pair */
      const double t0[] = {1, 0.040, 0.020, 0.010, 0.005}, t1[] = {1, FAIL, 0.022, 0.011, 0.0055};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 0, "winner %d, want 0 (the runner-up is 10 %% slower in every whole pair)", w);
      check(q.runner_calls == 5, "the runner-up ran %d times, want 5 (its warm-up, 3 whole pairs, 1 lost)",
            q.runner_calls);
    }
    test_case("a failed call of the choice delays the runner-up", 10);
    { /* the choice's call before pair 0 fails: the runner-up waits for a timed one and pairs with it */
      const double t0[] = {1, FAIL, 0.010, 0.010, 0.010}, t1[] = {1, 0.011, 0.011, 0.011, 0.011};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 0 && q.after_fail == 0 && q.runner_calls == 4,
            "winner %d, runner-up calls %d (%d right after a failed call), want 0, 4, 0", w, q.runner_calls,
            q.after_fail);
    }
    /* The model's predicted ratio weighs as much as the median pair (tune.c). */
    test_case("a runner-up predicted 34 % slower stays out on an 11 % median win", 10);
    { /* the times of a 10 Gbit reduce_scatter whose runner-up ran 18 % slower after */
      const double t0[] = {1, 0.0219, 0.0203, 0.0171, 0.0219, 0.0203},
                   t1[] = {1, 0.0194, 0.0180, 0.0194, 0.0194, 0.0180};
      check(run_calls(t0, t1, 60, 0, &q) == 1, "without a prior the 11 %% median win of five pairs decides");
      const int w = run_calls(t0, t1, 60, 1340, &q);
      check(w == 0, "winner %d, want 0 (sqrt(0.888 * 1.34) = 1.09)", w);
    }
    /* The runner-up's calls are spaced to cost at most tpi_tune_budget of the calls so far (tune.c). */
    test_case("a runner-up predicted 19 % slower runs first at call 6, then as its pairs say", 10);
    { /* a one-shot m = 16, k = 8192, n = 2048 fp32 call on W = 2 (shm_pull against unfused, predicted 1.19):
       * 1 x 0.188 <= 0.03 x 7; in the first 10 calls it runs once, 1.9 % of their time at its predicted cost */
      const double t0[] = {1, 0.0300, 0.0300, 0.0300}, t1[] = {1, 0.0318, 0.0318, 0.0318};
      const int w = run_calls(t0, t1, 60, 1188, &q);
      check(w == 0 && q.first == 6, "winner %d, runner-up first at call %d; want 0, 6", w, q.first);
      /* pair 0 when 2 x 0.188 <= 0.03 x (call + 1): call 12; then 6 % a pair: the next two back to back */
      check(q.used == 17, "decided after %d calls, want 17", q.used);
      /* the same runner-up measured 14 % slower: its last pairs spaced out */
      const double u1[] = {1, 0.0342, 0.0342, 0.0342};
      const int w14 = run_calls(t0, u1, 60, 1188, &q);
      check(w14 == 0 && q.used > 17 && q.used <= TPI_TUNE_CALLS_MAX,
            "14 %% slower: winner %d after %d calls, want 0 after 18 ... %d", w14, q.used, TPI_TUNE_CALLS_MAX);
    }
    test_case("a runner-up 26 % slower in its first two pairs leaves after them", 10);
    {
      const double t0[] = {1, 0.0289, 0.0283, 0.0276}, t1[] = {1, 0.0365, 0.0359, 0.0359};
      const int w = run_calls(t0, t1, 60, 1188, &q);
      /* warm-up at 6; pair 0 when 2 x 0.188 <= 0.03 x (call + 1): call 12; pair 1 when 3 x 0.263 <= 0.03 x
       * (call + 1): call 26 */
      check(w == 0 && q.runner_calls == 1 + TPI_TUNE_CLEAR_PAIRS && q.used == 27,
            "winner %d, runner-up calls %d, decided after %d calls; want 0, %d, 27", w, q.runner_calls, q.used,
            1 + TPI_TUNE_CLEAR_PAIRS);
    }
    test_case("a slow spell in the first pair does not end the exploration", 10);
    { /* a 1 Gbit reduce_scatter plan, ring chosen with unfused predicted 18 % slower (bench/RESULTS.md §40.6):
       * its first pair, in a slow spell, had unfused 29 % slower (ring's call 1.4x, unfused's 2.3x its later
       * time); later pairs have unfused 20 % faster, forced runs' worst for ring (1.25 against 0.99 of T_seq).
       * (run_times calls candidate 0 unfused; only the times and the prior matter.) */
      const double t0[] = {1, 0.0103, 0.0073, 0.0073, 0.0073, 0.0073},
                   t1[] = {1, 0.0133, 0.0058, 0.0058, 0.0058, 0.0058};
      const int w = run_calls(t0, t1, 60, 1180, &q);
      /* five pairs (pair 0 contradicts), median 0.795: sqrt(0.795 x 1.18) = 0.97. Later pairs at 0.82 or above
       * would keep ring: the prior asks for a median under 0.98^2 / 1.18 = 0.814 */
      check(w == 1 && q.runner_calls == 1 + TPI_TUNE_SAMPLES_MAX, "winner %d after %d runner-up calls, want 1, %d", w,
            q.runner_calls, 1 + TPI_TUNE_SAMPLES_MAX);
    }
    test_case("the runner-up's calls stay within the budget", 10);
    { /* a runner-up predicted and measured 40 % slower, never clear (1.14x in every pair would be): at most
       * TPI_TUNE_CALLS_MAX calls, and at every call its calls so far cost within the budget */
      const double t0[] = {1, 0.010, 0.010, 0.010}, t1[] = {1, 0.0114, 0.0114, 0.0114};
      run_calls(t0, t1, 200, 1400, &q);
      check(q.used <= TPI_TUNE_CALLS_MAX && q.runner_calls == 4,
            "decided after %d calls (at most %d), %d runner-up calls", q.used, TPI_TUNE_CALLS_MAX, q.runner_calls);
      check(q.first >= 13, "the runner-up predicted 40 %% slower first ran at call %d, want 13 or later", q.first);
    }
    test_case("a win, a clear loss and a win, then two wins: the runner-up wins", 10);
    { /* the loss in pair 1 does not end the exploration: pair 0 was a win */
      const double t0[] = {1, 0.0200, 0.0200, 0.0200, 0.0200, 0.0200},
                   t1[] = {1, 0.0180, 0.0250, 0.0180, 0.0180, 0.0180};
      const int w = run_calls(t0, t1, 60, 0, &q);
      check(w == 1, "winner %d, want 1", w);
    }
    test_case("a runner-up predicted 5 % slower wins all three pairs (median 16 %)", 10);
    {
      const double t0[] = {1, 0.0774, 0.0792, 0.0727}, t1[] = {1, 0.0650, 0.0666, 0.0657};
      const int w = run_calls(t0, t1, 60, 1054, &q);
      check(w == 1, "winner %d, want 1 (sqrt(0.84 * 1.054) = 0.94)", w);
    }
    /* Three pairs won outvote a prior of at most TPI_TUNE_EVERY_PM (tune.c). */
    test_case("a runner-up predicted 4 % slower that wins every pair wins", 10);
    { /* a 10 Gbit reduce_scatter plan, ring/16 against unfused (RESULTS §32): sqrt(0.933 * 1.044) = 0.987 */
      const double t0[] = {1, 0.05106, 0.05045, 0.06313}, t1[] = {1, 0.04910, 0.04709, 0.04874};
      int w = run_calls(t0, t1, 60, 1044, &q);
      check(w == 1, "winner %d, want 1 (every pair 3.8-23 %% faster)", w);
      w = run_calls(t0, t1, 60, TPI_TUNE_EVERY_PM, &q);
      check(w == 1, "predicted %d per mille: winner %d, want 1 (the band's edge)", TPI_TUNE_EVERY_PM, w);
      /* beyond the band three pairs won do not decide: a confirming pair follows, here lost (ratio 1) */
      const double x0[] = {1, 0.05106, 0.05045, 0.06313, 0.050}, x1[] = {1, 0.04910, 0.04709, 0.04874, 0.050};
      w = run_calls(x0, x1, 60, TPI_TUNE_EVERY_PM + 1, &q);
      check(w == 0 && q.confirm_at == TPI_TUNE_SAMPLES && q.runner_calls == 1 + TPI_TUNE_SAMPLES + 2,
            "predicted %d per mille: winner %d after %d runner-up calls, confirming from pair %d; want 0 after %d, "
            "from %d (the confirming pair lost: the geometric mean with the prior decides, 0.998)",
            TPI_TUNE_EVERY_PM + 1, w, q.runner_calls, q.confirm_at, 1 + TPI_TUNE_SAMPLES + 2, TPI_TUNE_SAMPLES);
      /* pair 0 won by 1.9 % only: confirming pairs decide, here lost (ratio 1) */
      const double u1[] = {1, 0.05010, 0.04709, 0.04874, 0.050};
      w = run_calls(x0, u1, 60, 1044, &q);
      expect_decision("one pair won by under 2 %", w, &q, 0, 1 + TPI_TUNE_SAMPLES + 2, TPI_TUNE_SAMPLES);
    }
    test_case("a runner-up that won one pair of three by 1.4 % wins its confirming pairs", 10);
    { /* a 10 Gbit reduce_scatter plan, ring/4 chosen with unfused predicted 1 % slower (bench/RESULTS.md §44.3):
       * unfused won the pairs by 1.4 %, 9.5 % and 4.3 %, sqrt(0.957 x 1.01) = 0.983 kept ring, and ring then ran
       * 6.0 % slower than the hand-written sequence */
      const double t0[] = {1, 0.012571, 0.013369, 0.012071, 0.0125, 0.0125},
                   t1[] = {1, 0.012397, 0.012093, 0.011556, 0.0120, 0.0120};
      const int want = 1 + TPI_TUNE_SAMPLES + 2 * (TPI_TUNE_SAMPLES_MAX - TPI_TUNE_SAMPLES);
      int w = run_calls(t0, t1, 60, 1010, &q);
      expect_decision("confirming pairs won by 4 %", w, &q, 1, want, TPI_TUNE_SAMPLES);
      /* the second confirming pair won by 1 % only: the geometric mean with the prior decides after it */
      const double u1[] = {1, 0.012397, 0.012093, 0.011556, 0.0120, 0.01238};
      w = run_calls(t0, u1, 60, 1010, &q);
      expect_decision("the second confirming pair won by 1 %", w, &q, 0, want, TPI_TUNE_SAMPLES);
      /* the first one won by 1 % only: the confirmation ends there, the geometric mean decides */
      const double u2[] = {1, 0.012397, 0.012093, 0.011556, 0.01238, 0.0120};
      w = run_calls(t0, u2, 60, 1010, &q);
      expect_decision("the first confirming pair won by 1 %", w, &q, 0, 1 + TPI_TUNE_SAMPLES + 2, TPI_TUNE_SAMPLES);
      /* the same pairs with one lost: no confirming pair; not a win by the geometric mean, and a pair lost asks
       * for more pairs only where the rest would replace the choice */
      const double v1[] = {1, 0.012700, 0.012093, 0.011556, 0.0125, 0.0125};
      w = run_calls(t0, v1, 60, 1010, &q);
      expect_decision("one pair lost", w, &q, 0, 1 + TPI_TUNE_SAMPLES, 0);
      /* faster in every pair but by 1.5 % in their median: no confirming pair */
      const double x1[] = {1, 0.012390, 0.013168, 0.011890};
      w = run_calls(t0, x1, 60, 1010, &q);
      expect_decision("every pair won, the median by 1.5 %", w, &q, 0, 1 + TPI_TUNE_SAMPLES, 0);
    }
    /* Confirming pairs won outvote any prior (tune.c). */
    test_case("a prior read in a slow spell gives way to confirming pairs", 10);
    { /* a 1 Gbit reduce_scatter plan, ring chosen with unfused predicted 18 % slower, a prior read in a slow spell
       * (bench/RESULTS.md §41.1); unfused then ran 11 % faster (0.89 of ring), which sqrt(0.89 x 1.18) = 1.025
       * keeps out after three pairs; two confirming pairs (two runner-up calls each) replace ring */
      const double t0[] = {1, 0.0073, 0.0073, 0.0073, 0.0073, 0.0073},
                   t1[] = {1, 0.0065, 0.0065, 0.0065, 0.0065, 0.0065};
      const int want = 1 + TPI_TUNE_SAMPLES + 2 * (TPI_TUNE_SAMPLES_MAX - TPI_TUNE_SAMPLES);
      int w = run_calls(t0, t1, 60, 1180, &q);
      check(w == 1 && q.confirm_at == TPI_TUNE_SAMPLES && q.runner_calls == want && q.used <= TPI_TUNE_CALLS_MAX,
            "winner %d after %d runner-up calls (%d calls), confirming from pair %d; want 1 after %d, from %d", w,
            q.runner_calls, q.used, q.confirm_at, want, TPI_TUNE_SAMPLES);
      /* each candidate is timed after a call of its own: the calls after the other one (here 20 % slower for
       * the choice, 20 % faster for the runner-up) are not kept */
      after_other[0] = 1.2, after_other[1] = 0.8;
      w = run_calls(t0, t1, 60, 1180, &q);
      after_other[0] = after_other[1] = 1;
      for (int i = TPI_TUNE_SAMPLES; i < TPI_TUNE_SAMPLES_MAX; i++)
        check(fabs(q.samples[0][i] - t0[i + 1]) < 2e-6 && fabs(q.samples[1][i] - t1[i + 1]) < 2e-6, /* in us */
              "confirming pair %d kept %.4f / %.4f, want %.4f / %.4f (each after a call of its own)", i,
              q.samples[0][i], q.samples[1][i], t0[i + 1], t1[i + 1]);
      check(w == 1, "winner %d, want 1", w);
      /* the runner-up's untimed call in a confirming pair fails: nothing is lost */
      fail_runner = 1 + TPI_TUNE_SAMPLES;
      w = run_calls(t0, t1, 60, 1180, &q);
      check(w == 1 && q.runner_calls == want, "its untimed call failed: winner %d after %d runner-up calls, want 1, %d",
            w, q.runner_calls, want);
      /* its timed call fails: that pair is lost whole, and a third confirming pair runs */
      fail_runner = 1 + TPI_TUNE_SAMPLES + 1;
      w = run_calls(t0, t1, 60, 1180, &q);
      check(w == 1 && q.runner_calls == want + 2 && q.used <= TPI_TUNE_CALLS_MAX,
            "its timed call failed: winner %d after %d runner-up calls (%d calls), want 1, %d", w, q.runner_calls,
            q.used, want + 2);
      fail_runner = -1;
      /* a runner-up 1.9 % faster in one pair, 11 % in the others, gets confirming pairs too, and wins them */
      const double u1[] = {1, 0.0065, 0.00716, 0.0065, 0.0065, 0.0065};
      w = run_calls(t0, u1, 60, 1180, &q);
      expect_decision("one pair won by under 2 %", w, &q, 1, want, TPI_TUNE_SAMPLES);
      /* a runner-up that lost one pair gets none: the prior decides after three */
      const double v1[] = {1, 0.0065, 0.0074, 0.0065};
      w = run_calls(t0, v1, 60, 1180, &q);
      expect_decision("one pair lost", w, &q, 0, 1 + TPI_TUNE_SAMPLES, 0);
    }
    test_case("a runner-up that wins only right after the choice stays out", 10);
    { /* 5 % faster in three pairs, where it follows a call of the choice; 3 % slower after a call of its own, as it
       * would run for good (a link's token bucket that the choice leaves full, say) */
      const double t0[] = {1, 0.010, 0.010, 0.010, 0.010, 0.010}, t1[] = {1, 0.0095, 0.0095, 0.0095, 0.0103, 0.0095};
      const int w = run_calls(t0, t1, 60, 1100, &q);
      /* the confirming pair lost: sqrt(0.95 x 1.10) = 1.02 decides, no second one */
      check(w == 0 && q.confirm_at == TPI_TUNE_SAMPLES && q.runner_calls == 1 + TPI_TUNE_SAMPLES + 2,
            "winner %d after %d runner-up calls, confirming from pair %d; want 0 after %d, from %d", w, q.runner_calls,
            q.confirm_at, 1 + TPI_TUNE_SAMPLES + 2, TPI_TUNE_SAMPLES);
    }
  }
  const int rc = finish("test_tuner");
  tpmm_finalize();
  return rc;
}
