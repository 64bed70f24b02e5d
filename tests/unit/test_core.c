/* tests/unit/test_core.c — tensor lifecycle, scopes, errors, creation, views and copies. */
#include "bn_test.h"

Test(core, zeros_has_shape_dtype_and_values)
{
    bn_tensor *t = bn_zeros(BN_SHAPE(2, 3), BN_F32);
    cr_assert_not_null(t);
    cr_assert_eq(bn_ndim(t), 2);
    cr_assert_eq(bn_dim(t, 0), 2);
    cr_assert_eq(bn_dim(t, -1), 3);
    cr_assert_eq(bn_numel(t), 6);
    cr_assert_eq(bn_dtype_of(t), BN_F32);
    float *p = bn_tensor_data_f32(t);
    for (int i = 0; i < 6; i++) cr_assert_eq(p[i], 0.0f);
    bn_release(t);
}
