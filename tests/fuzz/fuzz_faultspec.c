/* Fuzz target: the command line's fault specs, `faultline inject HOST KIND
 * NAME=VALUE...` (controller/experiment/faultspec.h), as cmd_inject.c runs
 * them. The input is lines: the first is KIND, each other one an argument
 * NAME=VALUE; then the spec is checked, packed and unpacked again, and the
 * unpacked copy checked too (what the agent would receive). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/experiment/faultspec.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char err[512];
    char *save = NULL;
    char *kind = strtok_r(text, "\n", &save);
    Faultline__FaultSpec *spec = kind != NULL ? fl_faultspec_new(kind, err, sizeof(err)) : NULL;
    if (spec == NULL) {
        free(text);
        return 0;
    }
    int rc = 0;
    char *arg;
    while (rc == 0 && (arg = strtok_r(NULL, "\n", &save)) != NULL) {
        char *eq = strchr(arg, '=');
        if (eq == NULL)
            break;
        *eq = '\0';
        if (strcmp(arg, "name") == 0)
            rc = fl_faultspec_set_name(spec, eq + 1);
        else
            rc = fl_faultspec_set(spec, arg, eq + 1, err, sizeof(err));
    }
    (void)fl_faultspec_kind(spec);
    if (fl_faultspec_check(spec, err, sizeof(err)) == 0) {
        size_t len = faultline__fault_spec__get_packed_size(spec);
        uint8_t *buf = malloc(len + 1);
        if (buf == NULL)
            abort();
        faultline__fault_spec__pack(spec, buf);
        Faultline__FaultSpec *back = faultline__fault_spec__unpack(NULL, len, buf);
        if (back == NULL || fl_faultspec_check(back, err, sizeof(err)) != 0)
            abort(); /* a spec that passed its check must pass it at the agent's end */
        faultline__fault_spec__free_unpacked(back, NULL);
        free(buf);
    }
    fl_faultspec_free(spec);
    free(text);
    return 0;
}
