/* A harness with a deliberate bug, registered with should_fail: it crashes
 * on its seed input ("boom"), so the fuzz suite's runner must report
 * failure. If a crash ever stopped failing the run, this test would pass
 * and the suite would fail. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "boom", 4) == 0)
        abort();
    return 0;
}
