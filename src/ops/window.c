/* Output extents of sliding windows and convolution shape validation. */
#include "core/error.h"
#include "ops/ops.h"

#include <limits.h>

int ww_window_out_dim(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation)
{
    if (in <= 0 || kernel <= 0 || stride <= 0 || dilation <= 0 || pad_begin < 0 || pad_end < 0)
        return 0;
    /* 64-bit so that absurd sizes from a corrupt file cannot overflow. */
    long long span = (long long)in + pad_begin + pad_end - (long long)dilation * (kernel - 1) - 1;
    if (span < 0) return 0;
    long long out = span / stride + 1;
    return out > INT_MAX ? 0 : (int)out;
}

/* Largest element count any single tensor may have, so that int indices
 * and size_t products stay far from overflow. */
#define WW_MAX_TENSOR_ELEMS (1LL << 30)
/* Largest kernel, stride, dilation or padding: far beyond any real network,
 * small enough that window arithmetic in int cannot overflow. */
#define WW_MAX_WINDOW_PARAM 4096

wanwu_status ww_conv2d_shape_check(const ww_conv2d_shape *s, wanwu_error *err)
{
    if (!s) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "conv2d: shape is NULL");
    if (s->in_c <= 0 || s->in_h <= 0 || s->in_w <= 0 || s->out_c <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: sizes must be positive (in %dx%dx%d, out_c %d)", s->in_c,
                            s->in_h, s->in_w, s->out_c);
    if (s->kernel_h <= 0 || s->kernel_w <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: kernel %dx%d must be positive", s->kernel_h, s->kernel_w);
    if (s->stride_h <= 0 || s->stride_w <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: stride %dx%d must be positive", s->stride_h, s->stride_w);
    if (s->dilation_h <= 0 || s->dilation_w <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: dilation %dx%d must be positive", s->dilation_h,
                            s->dilation_w);
    if (s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 || s->pad_right < 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: padding (top %d, left %d, bottom %d, right %d) is negative",
                            s->pad_top, s->pad_left, s->pad_bottom, s->pad_right);
    if (s->groups <= 0 || s->in_c % s->groups != 0 || s->out_c % s->groups != 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: groups %d must divide in_c %d and out_c %d", s->groups,
                            s->in_c, s->out_c);
    if (s->kernel_h > WW_MAX_WINDOW_PARAM || s->kernel_w > WW_MAX_WINDOW_PARAM ||
        s->stride_h > WW_MAX_WINDOW_PARAM || s->stride_w > WW_MAX_WINDOW_PARAM ||
        s->dilation_h > WW_MAX_WINDOW_PARAM || s->dilation_w > WW_MAX_WINDOW_PARAM ||
        s->pad_top > WW_MAX_WINDOW_PARAM || s->pad_left > WW_MAX_WINDOW_PARAM ||
        s->pad_bottom > WW_MAX_WINDOW_PARAM || s->pad_right > WW_MAX_WINDOW_PARAM)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "conv2d: kernel, stride, dilation and padding must be at most %d",
                            WW_MAX_WINDOW_PARAM);
    int want_h = ww_window_out_dim(s->in_h, s->kernel_h, s->stride_h, s->pad_top, s->pad_bottom,
                                   s->dilation_h);
    int want_w = ww_window_out_dim(s->in_w, s->kernel_w, s->stride_w, s->pad_left, s->pad_right,
                                   s->dilation_w);
    if (want_h <= 0 || want_w <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: kernel %dx%d (dilation %dx%d) does not fit the padded "
                            "%dx%d input",
                            s->kernel_h, s->kernel_w, s->dilation_h, s->dilation_w, s->in_h,
                            s->in_w);
    if (s->out_h != want_h || s->out_w != want_w)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "conv2d: output is %dx%d but the window formula gives %dx%d", s->out_h,
                            s->out_w, want_h, want_w);
    long long in_elems = (long long)s->in_c * s->in_h * s->in_w;
    long long out_elems = (long long)s->out_c * s->out_h * s->out_w;
    long long weight_elems =
        (long long)s->out_c * (s->in_c / s->groups) * s->kernel_h * s->kernel_w;
    if (in_elems > WW_MAX_TENSOR_ELEMS || out_elems > WW_MAX_TENSOR_ELEMS ||
        weight_elems > WW_MAX_TENSOR_ELEMS)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "conv2d: tensors too large (input %lld, output %lld, weight %lld "
                            "elements; limit %lld)",
                            in_elems, out_elems, weight_elems, WW_MAX_TENSOR_ELEMS);
    return WANWU_OK;
}
