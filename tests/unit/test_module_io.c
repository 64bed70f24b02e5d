/* tests/unit/test_module_io.c — models and checkpoints on disk: bn_module_save / bn_module_load
 * (.born and .safetensors) round trips, strict loads that name the keys that differ, the
 * non-strict bn_module_load_ex report (missing / unexpected / shape-mismatched keys by name),
 * and bn_checkpoint_save / bn_checkpoint_load: training resumed from a checkpoint (model, Adam
 * state, step LR schedule, generator) continues bit for bit like a run that never stopped.
 * No fixtures: every value compared was made by born in the same test. */
#include "bn_test.h"

#include "born/born.h"
#include "born/checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Linear(4, 3), BatchNorm1d(3) (buffers), Linear(3, 2) */
static bn_module *small_net(uint64_t seed)
{
    bn_manual_seed(seed);
    return bn_nn_sequential(bn_nn_linear(4, 3, true), bn_nn_batchnorm1d(3, (bn_norm_opts){0}),
                            bn_nn_linear(3, 2, true), NULL);
}

static void tmp_path(char *buf, size_t n, const char *ext)
{
    snprintf(buf, n, "/tmp/born-module-io-%d-%s", (int)getpid(), ext);
}

/* Every entry of a's and b's state dicts is equal in name, shape and value. */
static void assert_same_state(const bn_module *a, const bn_module *b)
{
    bn_tensor_list sa = bn_module_state_dict(a), sb = bn_module_state_dict(b);
    cr_assert_eq(sa.count, sb.count);
    for (int i = 0; i < sa.count; i++) {
        cr_assert_str_eq(sa.names[i], sb.names[i]);
        bnt_assert_equal(sb.tensors[i], sa.tensors[i], sa.names[i]);
    }
    bn_tensor_list_free(&sa);
    bn_tensor_list_free(&sb);
}

static void round_trip(const char *ext)
{
    char path[256];
    tmp_path(path, sizeof path, ext);
    BNT_ASSERT_NO_LEAK({
        bn_module *a = small_net(1), *b = small_net(2);
        cr_assert_eq(bn_module_save(a, path), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_module_load(b, path), BN_OK, "%s", bn_error_message());
        assert_same_state(a, b);
        bn_module_free(a);
        bn_module_free(b);
    });
    unlink(path);
}

Test(module_io, save_and_load_round_trip_born) { round_trip("m.born"); }
Test(module_io, save_and_load_round_trip_safetensors) { round_trip("m.safetensors"); }

Test(module_io, strict_load_names_the_keys_that_differ_and_changes_nothing)
{
    char path[256];
    tmp_path(path, sizeof path, "strict.born");
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(3);
        bn_module *a = bn_nn_sequential(bn_nn_linear(4, 3, true), bn_nn_linear(3, 5, true), NULL);
        bn_module *b = small_net(4), *b0 = small_net(4);
        cr_assert_eq(bn_module_save(a, path), BN_OK, "%s", bn_error_message());
        cr_assert_neq(bn_module_load(b, path), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load", path, "missing key", "\"1.running_mean\"",
                         "0 unexpected keys", "2 shape mismatches", "\"1.weight: file [5, 3], module [3]\"", NULL);
        assert_same_state(b, b0); /* nothing copied */
        bn_module_free(a);
        bn_module_free(b);
        bn_module_free(b0);
    });
    unlink(path);
}

Test(module_io, non_strict_load_reports_missing_unexpected_and_mismatched_keys)
{
    char path[256];
    tmp_path(path, sizeof path, "loose.safetensors");
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(3);
        /* 0.weight [3, 4] and 0.bias match; 1.weight [5, 3] is not BatchNorm's [3] */
        bn_module *a = bn_nn_sequential(bn_nn_linear(4, 3, true), bn_nn_linear(3, 5, true), NULL);
        bn_module *b = small_net(4);
        cr_assert_eq(bn_module_save(a, path), BN_OK, "%s", bn_error_message());
        bn_load_report r;
        cr_assert_eq(bn_module_load_ex(b, path, false, &r), BN_OK, "%s", bn_error_message());
        cr_assert_eq(r.n_missing, 5); /* 1.running_mean, 1.running_var, 1.num_batches_tracked, 2.* */
        cr_assert_str_eq(r.missing[0], "1.running_mean");
        cr_assert_eq(r.n_unexpected, 0);
        cr_assert_eq(r.n_mismatched, 2);
        cr_assert_str_eq(r.mismatched[0], "1.weight: file [5, 3], module [3]");
        bn_load_report_free(&r);
        bn_tensor *wa = bn_module_get(a, "0.weight"), *wb = bn_module_get(b, "0.weight");
        bnt_assert_equal(wb, wa, "0.weight");
        bn_release(wa);
        bn_release(wb);
        bn_module_free(a);
        bn_module_free(b);
    });
    unlink(path);
}

Test(module_io, load_state_dict_ex_reports_unexpected_keys)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_linear(2, 2, false);
        bn_scope_begin();
        char *names[] = {"weight", "extra"};
        bn_tensor *ts[] = {bn_ones(BN_SHAPE(2, 2), BN_F32), bn_zeros(BN_SHAPE(1), BN_F32)};
        bn_tensor_list sd = {2, names, ts};
        bn_load_report r;
        cr_assert_neq(bn_module_load_state_dict_ex(m, &sd, true, &r), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load_state_dict_ex", "1 unexpected key",
                         "\"extra\"", NULL);
        cr_assert_eq(r.n_unexpected, 1);
        bn_load_report_free(&r);
        cr_assert_eq(bn_module_load_state_dict_ex(m, &sd, false, NULL), BN_OK);
        bn_tensor *w = bn_module_get(m, "weight");
        bnt_assert_equal(w, ts[0], "weight");
        bn_scope_end(); /* w, a new reference, went to the scope */
        bn_module_free(m);
    });
}

Test(module_io, bad_arguments_are_clear_errors)
{
    BNT_ASSERT_NO_LEAK({
        bn_module *m = bn_nn_linear(2, 2, true);
        cr_assert_neq(bn_module_save(NULL, "/tmp/x.born"), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_module_save", "m", NULL);
        cr_assert_neq(bn_module_load(m, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load", "path", NULL);
        cr_assert_neq(bn_module_save(m, "/tmp/born-model.txt"), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "born-model.txt", NULL);
        cr_assert_neq(bn_module_load(m, "/nonexistent-born/m.born"), BN_OK);
        bnt_assert_error(BN_ERR_IO, "/nonexistent-born/m.born", NULL);
        cr_assert_neq(bn_module_load_state_dict_ex(m, NULL, true, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_module_load_state_dict_ex", "sd", NULL);
        cr_assert_neq(bn_checkpoint_save("/tmp/x.born", NULL, NULL, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_checkpoint_save", "m", NULL);
        cr_assert_neq(bn_checkpoint_load(NULL, m, NULL, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_checkpoint_load", "path", NULL);
        bn_module_free(m);
    });
}

/* ---- checkpoints ------------------------------------------------------------------------------ */
/* k Adam steps (and schedule steps) on a fixed regression problem; batch i's data is drawn from
 * the generator, so a restored generator state matters. */
static void train_steps(bn_module *m, bn_optim *o, bn_sched *s, int k)
{
    for (int i = 0; i < k; i++) {
        bn_scope_begin();
        bn_tensor *x = bn_randn(BN_SHAPE(8, 4), BN_F32);
        bn_tensor *y = bn_randn(BN_SHAPE(8, 2), BN_F32);
        bn_optim_zero_grad(o);
        bn_tensor *loss = bn_mse_loss(bn_module_forward(m, x), y, (bn_loss_opts){0});
        cr_assert_eq(bn_backward(loss), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_optim_step(o), BN_OK, "%s", bn_error_message());
        if (s) cr_assert_eq(bn_sched_step(s), BN_OK);
        bn_scope_end();
    }
}

Test(checkpoint, resumed_training_matches_an_uninterrupted_run_bit_for_bit)
{
    char path[256];
    tmp_path(path, sizeof path, "ck.born");
    BNT_ASSERT_NO_LEAK({
        /* straight: 5 steps; interrupted: 2 steps, checkpoint, fresh objects, restore, 3 steps */
        bn_module *a = small_net(9);
        bn_optim *oa = bn_optim_adam(a, (bn_adam_opts){.lr = 0.05});
        bn_sched *sa = bn_sched_step_lr(oa, 2, 0.5);
        train_steps(a, oa, sa, 2);
        bn_checkpoint_info info = {.epoch = 1, .step = 2, .rng = bn_rng_get_state(),
                                   .history_json = "[{\"loss\":1.5}]",
                                   .config_json = "{\"model\":\"small\"}"};
        cr_assert_eq(bn_checkpoint_save(path, a, oa, sa, &info), BN_OK, "%s", bn_error_message());
        train_steps(a, oa, sa, 3);

        bn_module *b = small_net(123);
        bn_optim *ob = bn_optim_adam(b, (bn_adam_opts){.lr = 0.05});
        bn_sched *sb = bn_sched_step_lr(ob, 2, 0.5);
        bn_manual_seed(777); /* the checkpoint puts the generator back */
        bn_checkpoint_info got;
        cr_assert_eq(bn_checkpoint_load(path, b, ob, sb, &got), BN_OK, "%s", bn_error_message());
        cr_assert_eq(got.epoch, 1);
        cr_assert_eq(got.step, 2);
        cr_assert_str_eq(got.history_json, "[{\"loss\":1.5}]");
        cr_assert_str_eq(got.config_json, "{\"model\":\"small\"}");
        cr_assert_eq(bn_optim_step_count(ob), 2);
        cr_assert_eq(bn_sched_last_epoch(sb), 2);
        cr_assert_eq(bn_optim_get_lr(ob), 0.025);
        bn_checkpoint_info_free(&got);
        train_steps(b, ob, sb, 3);
        assert_same_state(a, b);
        cr_assert_eq(bn_optim_get_lr(oa), bn_optim_get_lr(ob));
        bn_sched_free(sa);
        bn_sched_free(sb);
        bn_optim_free(oa);
        bn_optim_free(ob);
        bn_module_free(a);
        bn_module_free(b);
    });
    unlink(path);
}

Test(checkpoint, load_rejects_files_that_do_not_match_and_changes_nothing)
{
    char path[256], plain[256];
    tmp_path(path, sizeof path, "ck2.born");
    tmp_path(plain, sizeof plain, "plain.born");
    BNT_ASSERT_NO_LEAK({
        bn_module *a = small_net(9), *a0 = small_net(9);
        bn_optim *adam = bn_optim_adam(a, (bn_adam_opts){0});
        bn_optim *sgd = bn_optim_sgd(a, (bn_sgd_opts){.momentum = 0.9});
        bn_sched *s = bn_sched_step_lr(adam, 1, 0.5);
        cr_assert_eq(bn_checkpoint_save(path, a, adam, NULL, NULL), BN_OK, "%s", bn_error_message());
        cr_assert_eq(bn_module_save(a, plain), BN_OK, "%s", bn_error_message());
        bn_module *other = bn_nn_linear(4, 3, true);
        cr_assert_neq(bn_checkpoint_load(path, other, NULL, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_checkpoint_load", path, "does not hold this model",
                         "\"model.weight\"", NULL);
        cr_assert_neq(bn_checkpoint_load(path, a, sgd, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_ARG, "bn_checkpoint_load", "holds Adam state, the optimizer is SGD",
                         NULL);
        cr_assert_neq(bn_checkpoint_load(path, a, adam, s, NULL), BN_OK);
        bnt_assert_error(BN_ERR_FORMAT, "bn_checkpoint_load", "sched.last_epoch", NULL);
        cr_assert_neq(bn_checkpoint_load(plain, a, NULL, NULL, NULL), BN_OK);
        bnt_assert_error(BN_ERR_FORMAT, "bn_checkpoint_load", "is not a checkpoint", NULL);
        assert_same_state(a, a0);
        bn_module_free(other);
        bn_sched_free(s);
        bn_optim_free(adam);
        bn_optim_free(sgd);
        bn_module_free(a);
        bn_module_free(a0);
    });
    unlink(path);
    unlink(plain);
}

/* ReduceLROnPlateau's best value and counters survive a checkpoint: the resumed schedule cuts
 * the rate at the same step as the uninterrupted one. */
Test(checkpoint, plateau_schedule_state_survives_a_checkpoint)
{
    const double metrics[] = {1.0, 0.9, 0.95, 0.97, 0.99, 0.98, 0.97, 0.96, 0.99, 1.0};
    const int n = sizeof metrics / sizeof metrics[0];
    char path[256];
    tmp_path(path, sizeof path, "plateau.born");
    bn_plateau_opts po = {.patience = 2, .factor = 0.5, .cooldown = 1};
    bn_module *m1 = small_net(1), *m2 = small_net(2);
    bn_optim *o1 = bn_optim_sgd(m1, (bn_sgd_opts){.lr = 0.1});
    bn_optim *o2 = bn_optim_sgd(m2, (bn_sgd_opts){.lr = 0.1});
    bn_sched *s1 = bn_sched_reduce_on_plateau(o1, po), *s2 = bn_sched_reduce_on_plateau(o2, po);
    double lr_straight[16], lr_resumed[16];
    for (int i = 0; i < 4; i++) cr_assert_eq(bn_sched_step_metric(s1, metrics[i]), BN_OK);
    cr_assert_eq(bn_checkpoint_save(path, m1, o1, s1, NULL), BN_OK, "%s", bn_error_message());
    for (int i = 4; i < n; i++) {
        cr_assert_eq(bn_sched_step_metric(s1, metrics[i]), BN_OK);
        lr_straight[i] = bn_optim_get_lr(o1);
    }
    cr_assert_eq(bn_checkpoint_load(path, m2, o2, s2, NULL), BN_OK, "%s", bn_error_message());
    bn_sched_state st = bn_sched_get_state(s2);
    cr_assert_eq(st.last_epoch, 4);
    for (int i = 4; i < n; i++) {
        cr_assert_eq(bn_sched_step_metric(s2, metrics[i]), BN_OK);
        lr_resumed[i] = bn_optim_get_lr(o2);
        cr_assert_eq(lr_resumed[i], lr_straight[i], "step %d: lr %g resumed, %g straight", i,
                     lr_resumed[i], lr_straight[i]);
    }
    cr_assert_lt(lr_straight[n - 1], 0.1, "the schedule must have cut the rate at least once");
    cr_assert_eq(bn_sched_set_state(s2, (bn_sched_state){.last_epoch = -1}), BN_ERR_ARG);
    bnt_assert_error(BN_ERR_ARG, "bn_sched_set_state", "last_epoch -1", NULL);
    bn_sched_free(s1);
    bn_sched_free(s2);
    bn_optim_free(o1);
    bn_optim_free(o2);
    bn_module_free(m1);
    bn_module_free(m2);
    unlink(path);
}
