/* Fuzz target: the key file reader (common/key.h). The input is the file's
 * contents, written mode 0600 as a real key file is. */
#include <stddef.h>
#include <stdint.h>

#include "common/key.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], err[512];
    fuzz_tmp_write("faultline.key", data, size, 0600, path, sizeof(path));
    struct fl_key key;
    if (fl_key_check_path(path, err, sizeof(err)) == 0 &&
        fl_key_load(path, &key, err, sizeof(err)) == 0)
        fl_key_wipe(&key);
    return 0;
}
