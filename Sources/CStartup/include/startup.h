#ifndef BERTLRP_STARTUP_H
#define BERTLRP_STARTUP_H

/// Gives back the processors the process was held from while the libraries
/// initialized (see startup.c). Call first thing in main, before any thread
/// starts; harmless when nothing was held.
void startup_release_processors(void);

#endif
