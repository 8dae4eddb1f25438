/* Fuzz target: the YAML document reader every loader sits on
 * (common/yamldoc.h), from memory, then the typed accessors over every node
 * of the tree it built. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/units.h"
#include "common/yamldoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct fl_yaml_node *n, int depth)
{
    char err[256];
    const char *s;
    bool b;
    uint64_t u;
    struct fl_size sz;
    const char *list[8];
    size_t count;
    if (n == NULL || depth > 64)
        return;
    (void)fl_yaml_is_null(n);
    (void)fl_yaml_string(n, &s, err, sizeof(err));
    (void)fl_yaml_bool(n, &b, err, sizeof(err));
    (void)fl_yaml_uint(n, 1, 1000, &u, err, sizeof(err));
    (void)fl_yaml_duration(n, &u, err, sizeof(err));
    (void)fl_yaml_size(n, &sz, err, sizeof(err));
    (void)fl_yaml_strings(n, list, 8, &count, err, sizeof(err));
    static const char *const known[] = {"name", "hosts", "faults", NULL};
    (void)fl_yaml_expect(n, FL_YAML_MAPPING, err, sizeof(err));
    if (n->kind == FL_YAML_MAPPING) {
        (void)fl_yaml_check_keys(n, known, err, sizeof(err));
        (void)fl_yaml_get(n, "name");
        for (size_t i = 0; i < n->n_pairs; i++) {
            walk(n->pairs[i].key, depth + 1);
            walk(n->pairs[i].value, depth + 1);
        }
    }
    for (size_t i = 0; n->kind == FL_YAML_SEQUENCE && i < n->n_items; i++)
        walk(n->items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_yaml_doc *doc = NULL;
    char err[512];
    if (fl_yaml_load_buffer("fuzz.yaml", (const char *)data, size, &doc, err, sizeof(err)) == 0) {
        walk(doc->root, 0);
        fl_yaml_free(&doc);
    }
    return 0;
}
