/* tests/unit/test_sched.c — learning-rate schedules: 60-step rate sequences equal
 * torch.optim.lr_scheduler's, and bad arguments are rejected.
 * Fixtures: tests/data/optim_sched.txt, written by scripts/gen_optim.py. */
#include "bn_test.h"

#include "born/optim.h"

#include <math.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(sched, .fini = fini);

#define N 60

/* an SGD optimizer at lr 0.1 over one parameter, like the generator's */
static bn_optim *sgd(bn_tensor **p)
{
    *p = bn_zeros(BN_SHAPE(1), BN_F32);
    return bn_optim_sgd_params(p, 1, (bn_sgd_opts){.lr = 0.1});
}

/* steps s N-1 times (with the fixture's metrics for ReduceLROnPlateau), checking the rate of
 * every step against the fixture */
static void check_sequence(const char *name, bn_optim *o, bn_sched *s, bool metric)
{
    cr_assert_not_null(s, "%s: %s", name, bn_error_message());
    fx_file *f = fx_open("optim_sched.txt");
    double want[N], metrics[N];
    cr_assert_eq(bn_copy_to_host(bnt_keep(fx_tensor(f, name, "lr")), want, sizeof want), BN_OK);
    if (metric)
        bn_copy_to_host(bnt_keep(fx_tensor(f, name, "metric")), metrics, sizeof metrics);
    for (int i = 0; i < N; i++) {
        if (i > 0) {
            bn_status st = metric ? bn_sched_step_metric(s, metrics[i - 1]) : bn_sched_step(s);
            cr_assert_eq(st, BN_OK, "%s step %d: %s", name, i, bn_error_message());
        }
        double got = bn_optim_get_lr(o);
        cr_assert(fabs(got - want[i]) <= 1e-12 * fabs(want[i]) + 1e-15,
                  "%s step %d: lr %.17g, torch %.17g", name, i, got, want[i]);
        cr_assert_eq(bn_sched_get_lr(s), got);
    }
    fx_close(f);
}

#define SCHED_TEST(test_name, fixture, make, metric)                                               \
    Test(sched, test_name)                                                                         \
    {                                                                                              \
        bn_tensor *p;                                                                              \
        bn_optim *o = sgd(&p);                                                                     \
        bn_sched *s = make;                                                                        \
        check_sequence(fixture, o, s, metric);                                                     \
        bn_sched_free(s);                                                                          \
        bn_optim_free(o);                                                                          \
        bn_release(p);                                                                             \
    }

SCHED_TEST(step_lr_matches_torch, "step_lr", bn_sched_step_lr(o, 7, 0.5), false)
SCHED_TEST(multistep_lr_counts_repeated_milestones, "multistep_lr",
           bn_sched_multistep_lr(o, (int64_t[]){41, 20, 5, 20}, 4, 0.3), false)
SCHED_TEST(exponential_lr_matches_torch, "exponential_lr", bn_sched_exponential_lr(o, 0.95),
           false)
SCHED_TEST(cosine_annealing_is_periodic_past_t_max, "cosine_lr",
           bn_sched_cosine_annealing_lr(o, 17, 0.001), false)
SCHED_TEST(one_cycle_matches_torch, "one_cycle",
           bn_sched_one_cycle_lr(o, 0.5, N, (bn_one_cycle_opts){0}), false)
SCHED_TEST(one_cycle_three_phase_linear_matches_torch, "one_cycle_three_phase_linear",
           bn_sched_one_cycle_lr(o, 0.5, N + 5,
                                 (bn_one_cycle_opts){.pct_start = 0.25, .div_factor = 10,
                                                     .final_div_factor = 100,
                                                     .three_phase = true, .linear = true}),
           false)
SCHED_TEST(warmup_cosine_matches_its_lambda, "warmup_cosine",
           bn_sched_warmup_cosine(o, 8, 50, 0.002), false)
SCHED_TEST(reduce_on_plateau_min_with_cooldown, "plateau_min",
           bn_sched_reduce_on_plateau(o, (bn_plateau_opts){.factor = 0.5, .patience = 3,
                                                           .cooldown = 2, .min_lr = 0.004}),
           true)
SCHED_TEST(reduce_on_plateau_max, "plateau_max",
           bn_sched_reduce_on_plateau(o, (bn_plateau_opts){.mode = BN_PLATEAU_MAX, .factor = 0.3,
                                                           .patience = 1, .threshold = 0.01}),
           true)

Test(sched, one_cycle_refuses_to_step_past_total_steps)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *p;
        bn_optim *o = sgd(&p);
        bn_sched *s = bn_sched_one_cycle_lr(o, 1.0, 3, (bn_one_cycle_opts){0});
        for (int i = 0; i < 3; i++) cr_assert_eq(bn_sched_step(s), BN_OK);
        cr_assert_eq(bn_sched_step(s), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sched_step", "OneCycleLR", "total_steps = 3", NULL);
        bn_sched_free(s);
        bn_optim_free(o);
        bn_release(p);
    });
}

Test(sched, constructors_reject_bad_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *p;
        bn_optim *o = sgd(&p);
        cr_assert_null(bn_sched_step_lr(NULL, 1, 0.1));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_step_lr", "o", NULL);
        cr_assert_null(bn_sched_step_lr(o, 0, 0.1));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_step_lr", "step_size = 0", NULL);
        cr_assert_null(bn_sched_cosine_annealing_lr(o, -3, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_cosine_annealing_lr", "t_max = -3", NULL);
        cr_assert_null(bn_sched_one_cycle_lr(o, 1, 10, (bn_one_cycle_opts){.pct_start = 1.5}));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_one_cycle_lr", "pct_start = 1.5", NULL);
        cr_assert_null(bn_sched_warmup_cosine(o, 10, 5, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_warmup_cosine", "10 and 5", NULL);
        cr_assert_null(bn_sched_reduce_on_plateau(o, (bn_plateau_opts){.factor = 2}));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_reduce_on_plateau", "factor = 2", NULL);
        cr_assert_null(bn_sched_multistep_lr(o, NULL, 2, 0.1));
        bnt_assert_error(BN_ERR_ARG, "bn_sched_multistep_lr", "milestones", NULL);
        bn_sched *pl = bn_sched_reduce_on_plateau(o, (bn_plateau_opts){0});
        cr_assert_eq(bn_sched_step(pl), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sched_step", "bn_sched_step_metric", NULL);
        cr_assert_eq(bn_sched_step(NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_sched_step", "NULL", NULL);
        bn_sched_free(pl);
        bn_optim_free(o);
        bn_release(p);
    });
}
