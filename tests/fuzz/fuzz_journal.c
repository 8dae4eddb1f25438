/* Fuzz target: the journal reader (agent/journal.h), as the guardian and a
 * restarted agent run it on whatever a crash left in the state directory.
 * The input is the whole journal file. Seeds: journal_seeds.c, which writes
 * them with the real fl_journal_append and record builders
 * (make_journal_seeds.sh). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/journal.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], err[512];
    fuzz_tmp_write("journal", data, size, 0600, path, sizeof(path));
    json_t *active = NULL;
    if (fl_journal_read_active(path, &active, err, sizeof(err)) == 0) {
        if (!json_is_array(active))
            abort(); /* the promise: an array of undo objects */
        json_decref(active);
    }
    return 0;
}
