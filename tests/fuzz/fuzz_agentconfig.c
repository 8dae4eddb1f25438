/* Fuzz target: the agent's config file (agent/config.h), through
 * fl_agent_config_load(PATH) on top of the default guardrails, as
 * `faultline-agent --config FILE` runs it. The input is the file. */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/guardrails.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200], err[1024];
    fuzz_tmp_write("agent.yaml", data, size, 0600, path, sizeof(path));
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config cfg = {0};
    (void)fl_agent_config_load(path, &cfg, &g, err, sizeof(err));
    fl_guardrails_free(&g);
    return 0;
}
