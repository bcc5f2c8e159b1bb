/* Architecture detection and builders on synthetic state dicts: the right
 * architecture is found from tensor names alone, missing or misshapen
 * tensors give messages naming the tensor, and a session's output does
 * not depend on the thread count. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "model/model.h"
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sd_builder {
    ww_state_dict sd;
    size_t cap;
    ww_rng rng;
} sd_builder;

static void put(sd_builder *b, const char *name, int ndim, const int64_t *shape, float lo, float hi)
{
    if (b->sd.count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->sd.tensors = realloc(b->sd.tensors, b->cap * sizeof *b->sd.tensors);
    }
    ww_named_tensor *t = &b->sd.tensors[b->sd.count++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->stored_dtype = WW_DTYPE_F32;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->data = malloc(t->numel * sizeof(float));
    ww_rng_fill(&b->rng, t->data, t->numel, lo, hi);
}

static void put_conv_bn(sd_builder *b, const char *conv, const char *bn, int out_c, int in_c, int k)
{
    char name[128];
    int64_t w[4] = {out_c, in_c, k, k}, c[1] = {out_c};
    float scale = 1.7f / sqrtf((float)(in_c * k * k));
    snprintf(name, sizeof name, "%s.weight", conv);
    put(b, name, 4, w, -scale, scale);
    snprintf(name, sizeof name, "%s.weight", bn);
    put(b, name, 1, c, 0.5f, 1.5f);
    snprintf(name, sizeof name, "%s.bias", bn);
    put(b, name, 1, c, -0.2f, 0.2f);
    snprintf(name, sizeof name, "%s.running_mean", bn);
    put(b, name, 1, c, -0.2f, 0.2f);
    snprintf(name, sizeof name, "%s.running_var", bn);
    put(b, name, 1, c, 0.5f, 2.0f);
}

static void make_resnet18(sd_builder *b)
{
    memset(b, 0, sizeof *b);
    ww_rng_seed(&b->rng, 18);
    put_conv_bn(b, "conv1", "bn1", 64, 3, 7);
    int in_c = 64;
    for (int layer = 1; layer <= 4; layer++) {
        int c = 64 << (layer - 1);
        for (int blk = 0; blk < 2; blk++) {
            char conv[64], bn[64];
            snprintf(conv, sizeof conv, "layer%d.%d.conv1", layer, blk);
            snprintf(bn, sizeof bn, "layer%d.%d.bn1", layer, blk);
            put_conv_bn(b, conv, bn, c, blk ? c : in_c, 3);
            snprintf(conv, sizeof conv, "layer%d.%d.conv2", layer, blk);
            snprintf(bn, sizeof bn, "layer%d.%d.bn2", layer, blk);
            put_conv_bn(b, conv, bn, c, c, 3);
            if (layer > 1 && blk == 0) {
                snprintf(conv, sizeof conv, "layer%d.0.downsample.0", layer);
                snprintf(bn, sizeof bn, "layer%d.0.downsample.1", layer);
                put_conv_bn(b, conv, bn, c, in_c, 1);
            }
        }
        in_c = c;
    }
    int64_t fw[2] = {1000, 512}, fb[1] = {1000};
    put(b, "fc.weight", 2, fw, -0.1f, 0.1f);
    put(b, "fc.bias", 1, fb, -0.1f, 0.1f);
}

static ww_named_tensor *find(sd_builder *b, const char *name)
{
    for (size_t i = 0; i < b->sd.count; i++)
        if (strcmp(b->sd.tensors[i].name, name) == 0) return &b->sd.tensors[i];
    return NULL;
}

static void test_resnet18_detected_and_runs_same_with_threads(void **state)
{
    (void)state;
    sd_builder b;
    make_resnet18(&b);
    assert_ptr_equal(ww_arch_detect(&b.sd), &ww_arch_resnet18);
    wanwu_model *model = NULL;
    wanwu_error err;
    assert_int_equal(ww_model_from_state_dict(&b.sd, NULL, &model, &err), WANWU_OK);
    assert_string_equal(wanwu_model_arch(model), "resnet18");
    assert_int_equal(wanwu_model_num_classes(model), 1000);
    assert_int_equal(wanwu_model_input_size(model), 224);
    /* torchvision's resnet18 has 11,689,512 parameters */
    assert_int_equal(wanwu_model_num_params(model), 11689512);

    size_t n = 3 * 224 * 224;
    float *input = malloc(n * sizeof *input);
    ww_rng rng;
    ww_rng_seed(&rng, 5);
    ww_rng_fill(&rng, input, n, -2, 2);
    float logits1[1000], logits2[1000], again[1000];
    wanwu_session *s1 = NULL, *s3 = NULL;
    wanwu_session_options three = {3};
    assert_int_equal(wanwu_session_create(model, NULL, &s1, &err), WANWU_OK);
    assert_int_equal(wanwu_session_create(model, &three, &s3, &err), WANWU_OK);
    assert_int_equal(wanwu_run(s1, input, logits1, &err), WANWU_OK);
    assert_int_equal(wanwu_run(s3, input, logits2, &err), WANWU_OK);
    assert_int_equal(wanwu_run(s1, input, again, &err), WANWU_OK);
    double spread = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(isfinite(logits1[i]));
        spread += fabs(logits1[i] - logits1[0]);
    }
    assert_true(spread > 1e-3); /* not a constant output */
    assert_true(ww_max_rel_diff(logits2, logits1, 1000) < 1e-4);
    assert_memory_equal(again, logits1, sizeof again); /* deterministic */
    /* The nodes read the input where the caller keeps it: at any
     * alignment, and a new input is read afresh. */
    float *shifted = malloc((n + 1) * sizeof *shifted);
    assert_non_null(shifted);
    memcpy(shifted + 1, input, n * sizeof *input);
    float unaligned[1000], other[1000];
    assert_int_equal(wanwu_run(s3, shifted + 1, unaligned, &err), WANWU_OK);
    assert_memory_equal(unaligned, logits2, sizeof unaligned);
    for (size_t i = 1; i <= n; i++)
        shifted[i] *= 0.5f;
    assert_int_equal(wanwu_run(s1, shifted + 1, other, &err), WANWU_OK);
    assert_true(ww_max_rel_diff(other, logits1, 1000) > 1e-3);
    free(shifted);
    wanwu_session_free(s1);
    wanwu_session_free(s3);
    wanwu_model_free(model);
    free(input);
    ww_state_dict_free(&b.sd);
}

/* Per-layer profiling: off by default, one entry per executed layer in
 * order with the layer's name, op, output shape and work, timings summed
 * over the profiled runs (and cleared by enabling again), same logits. */
static void test_session_profile(void **state)
{
    (void)state;
    sd_builder b;
    make_resnet18(&b);
    wanwu_model *model = NULL;
    wanwu_error err;
    assert_int_equal(ww_model_from_state_dict(&b.sd, NULL, &model, &err), WANWU_OK);
    size_t n = 3 * 224 * 224;
    float *input = malloc(n * sizeof *input);
    ww_rng rng;
    ww_rng_seed(&rng, 9);
    ww_rng_fill(&rng, input, n, -2, 2);
    float plain[1000], profiled[1000];
    wanwu_session *s = NULL;
    wanwu_session_options two = {2};
    assert_int_equal(wanwu_session_create(model, &two, &s, &err), WANWU_OK);
    int runs = -1;
    assert_int_equal(wanwu_session_profile(s, NULL, 0, &runs), 0); /* off */
    assert_int_equal(runs, 0);
    assert_int_equal(wanwu_run(s, input, plain, &err), WANWU_OK);
    assert_int_equal(wanwu_session_profile(s, NULL, 0, &runs), 0);
    assert_int_equal(runs, 0);

    assert_int_equal(wanwu_session_profile_enable(s, 1, &err), WANWU_OK);
    int count = wanwu_session_profile(s, NULL, 0, &runs);
    assert_true(count > 20); /* 20 convs, pools, fc */
    assert_int_equal(runs, 0);
    for (int r = 0; r < 3; r++)
        assert_int_equal(wanwu_run(s, input, profiled, &err), WANWU_OK);
    assert_memory_equal(profiled, plain, sizeof plain);
    wanwu_layer_time *layers = calloc((size_t)count + 1, sizeof *layers);
    layers[count].name = "untouched";
    assert_int_equal(wanwu_session_profile(s, layers, count, &runs), count);
    assert_int_equal(runs, 3);
    assert_string_equal(layers[count].name, "untouched"); /* no write past max */
    /* the stem's max pool is fused into conv1, which writes the pooled map */
    assert_string_equal(layers[0].name, "conv1");
    assert_string_equal(layers[0].op, "Conv2d+MaxPool2d");
    assert_int_equal(layers[0].out_channels, 64);
    assert_int_equal(layers[0].out_height, 56);
    assert_int_equal(layers[0].out_width, 56);
    assert_int_equal(layers[0].macs, (int64_t)64 * 112 * 112 * 3 * 7 * 7);
    assert_string_equal(layers[count - 1].name, "fc");
    assert_string_equal(layers[count - 1].op, "Linear");
    assert_int_equal(layers[count - 1].out_channels, 1000);
    assert_int_equal(layers[count - 1].macs, 512 * 1000);
    int64_t macs = 0;
    double total = 0;
    for (int i = 0; i < count; i++) {
        assert_true(layers[i].ms >= 0);
        macs += layers[i].macs;
        total += layers[i].ms;
    }
    assert_int_equal(macs, ww_graph_macs(&model->graph)); /* every layer counted once */
    assert_true(total > 0);
    /* fewer slots than layers: the first ones only */
    wanwu_layer_time two_layers[2];
    assert_int_equal(wanwu_session_profile(s, two_layers, 2, NULL), count);
    assert_string_equal(two_layers[1].name, layers[1].name);

    assert_int_equal(wanwu_session_profile_enable(s, 1, &err), WANWU_OK); /* restart: cleared */
    assert_int_equal(wanwu_session_profile(s, layers, count, &runs), count);
    assert_int_equal(runs, 0);
    for (int i = 0; i < count; i++)
        assert_true(layers[i].ms == 0);
    assert_int_equal(wanwu_session_profile_enable(s, 0, &err), WANWU_OK); /* stop */
    assert_int_equal(wanwu_run(s, input, profiled, &err), WANWU_OK);
    assert_int_equal(wanwu_session_profile(s, NULL, 0, &runs), 0);
    assert_int_equal(runs, 0);
    assert_int_equal(wanwu_session_profile_enable(NULL, 1, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_int_equal(wanwu_session_profile(NULL, NULL, 0, &runs), 0);
    free(layers);
    wanwu_session_free(s);
    wanwu_model_free(model);
    free(input);
    ww_state_dict_free(&b.sd);
}

static void test_errors_name_the_tensor(void **state)
{
    (void)state;
    sd_builder b;
    wanwu_model *model = NULL;
    wanwu_error err;

    make_resnet18(&b);
    ww_named_tensor *t = find(&b, "layer3.1.conv2.weight");
    t->shape[1] = 255; /* wrong in_c */
    assert_int_equal(ww_model_from_state_dict(&b.sd, NULL, &model, &err), WANWU_ERR_FORMAT);
    assert_null(model);
    assert_non_null(strstr(err.message, "layer3.1.conv2.weight"));
    assert_non_null(strstr(err.message, "255"));
    ww_state_dict_free(&b.sd);

    make_resnet18(&b);
    ww_named_tensor *var = find(&b, "layer2.0.bn1.running_var");
    free(var->name);
    var->name = strdup("layer2.0.bn1.something_else");
    assert_int_equal(ww_model_from_state_dict(&b.sd, NULL, &model, &err), WANWU_ERR_FORMAT);
    assert_non_null(strstr(err.message, "layer2.0.bn1.running_var"));

    /* forcing an architecture the tensors do not match */
    assert_int_equal(ww_model_from_state_dict(&b.sd, "mobilenet_v2", &model, &err),
                     WANWU_ERR_FORMAT);
    assert_non_null(strstr(err.message, "mobilenet_v2"));
    assert_non_null(strstr(err.message, "features.0.0.weight"));
    assert_int_equal(ww_model_from_state_dict(&b.sd, "vgg99", &model, &err), WANWU_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "resnet18"));
    ww_state_dict_free(&b.sd);

    /* nothing recognisable at all */
    memset(&b, 0, sizeof b);
    int64_t s[1] = {4};
    put(&b, "encoder.weight", 1, s, 0, 1);
    assert_null(ww_arch_detect(&b.sd));
    assert_int_equal(ww_model_from_state_dict(&b.sd, NULL, &model, &err), WANWU_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "--arch"));
    ww_state_dict_free(&b.sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18_detected_and_runs_same_with_threads),
        cmocka_unit_test(test_session_profile),
        cmocka_unit_test(test_errors_name_the_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
