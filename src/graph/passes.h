/* Graph passes, run in this order by ww_graph_optimize:
 *   fold_constants     - nodes reading only constants evaluated at load time
 *                        (the executor's code) into CONSTANT nodes; constants
 *                        read next to a computed value become the constant
 *                        operand of an ELTWISE or GATHER, or the bias of the
 *                        conv or linear layer they are added to; unread ones
 *                        dropped
 *   remove_identities  - drop Flatten/Dropout (flatten of C x 1 x 1 is free)
 *   fold_batchnorm     - BatchNorm after a conv folded into its weights/bias
 *   fuse_residual_add  - conv followed by add(conv, x) becomes conv with residual x
 *   fuse_activation    - an activation (ReLU, ReLU6, SiLU, sigmoid, hard-swish) after
 *                        a conv, add or linear becomes its epilogue
 *   fuse_channel_shuffle - a channel shuffle reads the two inputs of the concat
 *                        before it, and a channel slice of a shuffle becomes a
 *                        shuffle writing just that range: ShuffleNet's concat,
 *                        shuffle, split copy each value once instead of thrice
 *   fuse_maxpool       - a max pool reading only a conv without residual (ResNet's
 *                        stem) becomes part of the conv, which then writes the
 *                        pooled map only (ww_conv2d_create_pooled)
 *   fuse_channel_scale - a per-channel multiply (squeeze-and-excitation's) read
 *                        only by a 1x1 conv becomes part of the conv, which
 *                        applies it to a copy of its packed weights or to
 *                        its input as it packs it: one pass over the map
 *                        fewer (ww_conv2d_run_scaled)
 *   remove_dead_nodes  - nodes whose output nobody reads
 * Each pass preserves the function the graph computes (up to float
 * rounding) and returns the number of rewrites it made. */
#ifndef WW_GRAPH_PASSES_H
#define WW_GRAPH_PASSES_H

#include "graph/graph.h"

int ww_pass_fold_constants(ww_graph *g);
int ww_pass_remove_identities(ww_graph *g);
int ww_pass_fold_batchnorm(ww_graph *g);
int ww_pass_fuse_residual_add(ww_graph *g);
int ww_pass_fuse_activation(ww_graph *g);
int ww_pass_fuse_channel_shuffle(ww_graph *g);
int ww_pass_fuse_maxpool(ww_graph *g);
int ww_pass_fuse_channel_scale(ww_graph *g);
int ww_pass_fuse_channel_means(ww_graph *g);
int ww_pass_remove_dead_nodes(ww_graph *g);
void ww_graph_optimize(ww_graph *g);

/* Whether `value` is computed from CONSTANT nodes only. */
int ww_graph_value_is_constant(const ww_graph *g, int value);
/* Evaluates the nodes `value` is computed from, when they read constants
 * only, as ww_pass_fold_constants does (for a format reader that needs the
 * numbers, e.g. a weight computed by the source network). Returns 1 when
 * `value` is then the output of a CONSTANT node (its values in that node's
 * `weight`), 0 when it depends on the input or memory ran out. */
int ww_graph_fold_value(ww_graph *g, int value);

/* Memory plan: every live value gets an offset (in floats) into one arena;
 * values whose lifetimes do not overlap share space. */
typedef struct ww_memory_plan {
    size_t *offsets; /* per value id; SIZE_MAX for values not stored */
    size_t arena_floats;
} ww_memory_plan;

wanwu_status ww_plan_memory(const ww_graph *g, ww_memory_plan *plan, wanwu_error *err);
void ww_memory_plan_free(ww_memory_plan *plan);

#endif
