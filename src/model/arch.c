/* Architecture registry, detection from state-dict keys, and the checked
 * tensor accessor every builder uses. */
#include "core/error.h"
#include "model/model.h"

#include <stdio.h>
#include <string.h>

static const ww_arch *const registry[] = {
    &ww_arch_resnet18,        &ww_arch_resnet34,           &ww_arch_mobilenet_v2,
    &ww_arch_efficientnet_b0, &ww_arch_shufflenet_v2_x1_0, NULL,
};

static const char *const arch_names[] = {"resnet18",        "resnet34",           "mobilenet_v2",
                                         "efficientnet_b0", "shufflenet_v2_x1_0", NULL};

const ww_arch *const *ww_arch_registry(void)
{
    return registry;
}

const char *const *wanwu_supported_archs(void)
{
    return arch_names;
}

const char *wanwu_kernel_isa(void)
{
    return ww_isa_name(ww_isa_best());
}

const ww_arch *ww_arch_find(const char *name)
{
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const ww_arch *ww_arch_detect(const ww_state_dict *sd)
{
    for (int i = 0; registry[i]; i++)
        if (registry[i]->matches(sd)) return registry[i];
    return NULL;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

const float *ww_sd_tensor(const ww_state_dict *sd, const char *name, int ndim, const int64_t *shape,
                          wanwu_error *err)
{
    const ww_named_tensor *t = ww_state_dict_find(sd, name);
    if (!t) {
        ww_error_set(err, WANWU_ERR_FORMAT, "weight file has no tensor '%s'", name);
        return NULL;
    }
    if (!t->data) {
        ww_error_set(err, WANWU_ERR_FORMAT, "tensor '%s' is not floating point", name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        char want[128], got[128];
        format_shape(want, sizeof want, ndim, shape);
        format_shape(got, sizeof got, t->ndim, t->shape);
        for (char *p = want; (p = strstr(p, "-1")) != NULL;) {
            p[0] = '*';
            memmove(p + 1, p + 2, strlen(p + 2) + 1);
        }
        ww_error_set(err, WANWU_ERR_FORMAT, "tensor '%s' has shape %s, expected %s", name, got,
                     want);
        return NULL;
    }
    return t->data;
}
