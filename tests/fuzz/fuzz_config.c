/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Feeds the input bytes to pt_config_load_buf as a whole configuration file: libyaml's
 * tokenizer, the tree builder (depth cap, aliases, duplicate keys) and every schema check run
 * on them. Fuzz builds define PT_FUZZING, under which target host names are never looked up
 * (only address literals and "localhost"), so no input reaches the network. A successful load
 * is freed again; ASan's leak checker catches a failed load that forgets memory.
 */
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[4096];
    struct pt_config *cfg = NULL;
    if (pt_config_load_buf("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err)) == 0)
        pt_config_free(cfg);
    return 0;
}
