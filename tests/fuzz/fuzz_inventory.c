/* Fuzz target: the inventory loader (controller/experiment/inventory.h),
 * through its entry point fl_inventory_load(PATH): the input is the
 * inventory file. */
#include <stddef.h>
#include <stdint.h>

#include "controller/experiment/inventory.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], err[1024];
    fuzz_tmp_write("hosts.yaml", data, size, 0600, path, sizeof(path));
    struct fl_inventory *inv = NULL;
    if (fl_inventory_load(path, &inv, err, sizeof(err)) == 0) {
        (void)fl_inventory_host(inv, "web1");
        fl_inventory_free(&inv);
    }
    return 0;
}
