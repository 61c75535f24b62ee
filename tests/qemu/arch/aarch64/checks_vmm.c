#include "kernel.h"
#include "kmem.h"
void checks_vmm(void)
{
}
