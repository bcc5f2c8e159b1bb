/* Reference element-wise binary ops with a full, per-channel or scalar
 * second operand. */
#include "ops/ops.h"

void ww_eltwise_ref(size_t n, int hw, const float *a, const float *b, size_t b_count,
                    ww_eltwise_op op, int swap, float *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = b_count == n ? i : (b_count == 1 ? 0 : i / (size_t)hw);
        float x = a[i], y = b[j];
        if (swap) {
            float t = x;
            x = y;
            y = t;
        }
        switch (op) {
        case WW_ELT_ADD: out[i] = x + y; break;
        case WW_ELT_SUB: out[i] = x - y; break;
        case WW_ELT_MUL: out[i] = x * y; break;
        case WW_ELT_DIV: out[i] = x / y; break;
        }
    }
}
