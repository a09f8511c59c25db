#ifndef EXAR_CLZ4_SHIM_H
#define EXAR_CLZ4_SHIM_H
#include <lz4.h>
#endif
