/*
 * kheap blocks: the whole layer as one translation unit.
 *
 * The files stay small and each does one thing, but a free or an
 * allocation crosses several of them (lookup, tree, holes) for a few
 * instructions each. Compiled separately, every crossing is a call the
 * compiler cannot inline without link-time optimisation, which a kernel
 * linking this archive may not use; compiled as one unit, with the internal
 * functions static (KH_PRIVATE in block.h), the hot paths inline as they
 * would under LTO.
 */
#define KHEAP_UNITY 1
#include "tree.c"
#include "holes.c"
#include "debug.c"
#include "carve.c"
#include "release.c"
#include "resize.c"
#include "region.c"
#include "grow.c"
#include "trim.c"
#include "blocks.c"
#include "check.c"
#include "walk.c"
