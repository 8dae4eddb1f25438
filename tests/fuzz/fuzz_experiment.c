/* Fuzz target: the experiment loader (controller/experiment/experiment.h),
 * through its one entry point, fl_experiment_load(PATH): the input is the
 * experiment file. It sits in a private directory beside a copy of the
 * repository's inventory (FUZZ_HOSTS_YAML: experiments/hosts.yaml), so that
 * `inventory: hosts.yaml` resolves as it does in the repository. */
#include <stddef.h>
#include <stdint.h>

#include "controller/experiment/experiment.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Copies FUZZ_HOSTS_YAML into the private directory. */
static void put_hosts(void)
{
    static uint8_t buf[1 << 16];
    FILE *f = fopen(FUZZ_HOSTS_YAML, "rb");
    if (f == NULL) {
        perror(FUZZ_HOSTS_YAML);
        abort();
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char path[4200];
    fuzz_tmp_write("hosts.yaml", buf, n, 0600, path, sizeof(path));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char path[4200], err[1024];
    if (!ready) {
        put_hosts();
        ready = 1;
    }
    fuzz_tmp_write("experiment.yaml", data, size, 0600, path, sizeof(path));
    struct fl_experiment *e = NULL;
    if (fl_experiment_load(path, NULL, &e, err, sizeof(err)) == 0) {
        (void)fl_experiment_host(e, "web1");
        (void)fl_experiment_probe(e, "web");
        fl_experiment_free(&e);
    }
    return 0;
}
