#include "kernel.h"
#include "kmem.h"
void demo_print(void)
{
}
