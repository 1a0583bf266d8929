// Runs before any shared library's initializer (an executable's
// .preinit_array comes first in the ELF start-up order). OpenBLAS starts its
// thread pool in its initializer, one thread per processor this process may
// run on, and idle pool threads spin for a while, taking a core from short
// commands on a small machine (it made `convert` up to twice as slow). Our
// parallelism is one BLAS thread per worker; the engine grows the pool
// where a benchmark asks for more. So unless the user set
// OPENBLAS_NUM_THREADS, the process is held to one processor while the
// libraries initialize (OpenBLAS then starts no pool), and `main` gives the
// processors back before it starts anything. Setting the variable here
// would not do: libc's own initializer, which runs later, resets the
// environment to the one the kernel passed. Nothing here calls BLAS.
// libdispatch also counts the processors in its initializer, so it sees one
// for the whole run: parallel work runs on serial queues (Inference's
// WorkerPool: Dispatch gives each its own thread whatever the count), never
// on DispatchQueue.concurrentPerform, which would run its iterations one
// after another (the engine benchmark did, at half speed, until 2026-11-29).
#define _GNU_SOURCE
#include "startup.h"

#include <stdlib.h>

#if defined(__linux__)
#include <sched.h>

static cpu_set_t original;
static int held = 0;

static void hold_to_one_processor(int argc, char **argv, char **envp) {
    (void)argc;
    (void)argv;
    for (char **e = envp; e && *e; e++) {
        const char *s = *e, *name = "OPENBLAS_NUM_THREADS=";
        while (*name && *s == *name) { s++; name++; }
        if (*name == 0) return; // the user chose a count
    }
    if (sched_getaffinity(0, sizeof original, &original) != 0) return;
    if (CPU_COUNT(&original) <= 1) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &original)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    if (sched_setaffinity(0, sizeof one, &one) == 0) held = 1;
}

__attribute__((section(".preinit_array"), used))
static void (*const preinit_hold)(int, char **, char **) = hold_to_one_processor;

void startup_release_processors(void) {
    if (held) {
        sched_setaffinity(0, sizeof original, &original);
        held = 0;
    }
}

#else

void startup_release_processors(void) {}

#endif
