/* The compiled-in ImageNet wnid table: sorted, 1000 distinct, and every
 * synset of imagenet-sample/labels.tsv maps to its class_index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/imagenet_synsets.h"
#include "test_support.h"

static void test_sorted_and_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        const char *w = ww_imagenet_synset(i);
        assert_non_null(w);
        assert_int_equal(strlen(w), 9);
        assert_int_equal(w[0], 'n');
        if (i > 0) assert_true(strcmp(ww_imagenet_synset(i - 1), w) < 0);
        assert_int_equal(ww_imagenet_synset_index(w), i);
    }
    assert_null(ww_imagenet_synset(-1));
    assert_null(ww_imagenet_synset(1000));
}

static void test_lookup_edges(void **state)
{
    (void)state;
    assert_int_equal(ww_imagenet_synset_index("n01440764"), 0);
    assert_int_equal(ww_imagenet_synset_index("n01440764_tench.JPEG"), 0);
    assert_int_equal(ww_imagenet_synset_index("n15075141"), 999);
    assert_int_equal(ww_imagenet_synset_index("n0144076"), -1);
    assert_int_equal(ww_imagenet_synset_index("n00000000"), -1);
    assert_int_equal(ww_imagenet_synset_index("n99999999"), -1);
    assert_int_equal(ww_imagenet_synset_index("tench.jpg"), -1);
    assert_int_equal(ww_imagenet_synset_index(""), -1);
    assert_int_equal(ww_imagenet_synset_index(NULL), -1);
}

static void test_sample_labels(void **state)
{
    (void)state;
    const char *shared = ww_test_shared_dir();
    if (!shared) {
        if (ww_test_missing_shared("imagenet-sample/labels.tsv")) skip();
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/imagenet-sample/labels.tsv", shared);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (ww_test_missing_shared(path)) skip();
        return;
    }
    char line[1024];
    int rows = 0, mismatches = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header: file synset class_index name */
    assert_true(strncmp(line, "file\tsynset\tclass_index", 23) == 0);
    while (fgets(line, sizeof line, f)) {
        char file[512], synset[64];
        int class_index;
        if (sscanf(line, "%511[^\t]\t%63[^\t]\t%d", file, synset, &class_index) != 3) continue;
        rows++;
        if (ww_imagenet_synset_index(synset) != class_index ||
            strcmp(ww_imagenet_synset(class_index), synset) != 0) {
            mismatches++;
            fprintf(stderr, "labels.tsv: %s is class %d, the table says %d\n", synset, class_index,
                    ww_imagenet_synset_index(synset));
        }
        /* the file name carries the synset too */
        assert_int_equal(ww_imagenet_synset_index(file), class_index);
    }
    fclose(f);
    assert_int_equal(rows, 500);
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_and_distinct),
        cmocka_unit_test(test_lookup_edges),
        cmocka_unit_test(test_sample_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
