/*
 * kheap: the whole heap as one translation unit.
 *
 * The files stay small and each does one thing, but a free or an
 * allocation crosses several of them (lookup, run, map, tree, nodes) for a
 * few instructions each. Compiled separately, every crossing is a call the
 * compiler cannot inline without link-time optimisation, which a kernel
 * linking this archive may not use; compiled as one unit, with the
 * internal functions static (KH_PRIVATE in block.h), the hot paths inline
 * as they would under LTO.
 */
#define KHEAP_UNITY 1
#include "tree.c"
#include "nodes.c"
#include "runmap.c"
#include "run.c"
#include "cache.c"
#include "alloc.c"
#include "free.c"
#include "realloc.c"
#include "grow.c"
#include "check.c"
#include "walk.c"
#include "debug.c"
#include "global.c"
