#ifndef CSQLITESETTINGS_H
#define CSQLITESETTINGS_H

/// Turns off SQLite's memory statistics for the process (SQLITE_CONFIG_MEMSTATUS), which
/// otherwise take a process-wide mutex on every allocation and free. It must run before
/// SQLite is first used; afterwards it changes nothing. Returns SQLite's result code
/// (0 when it took effect).
int qisync_sqlite_disable_memory_statistics(void);

#endif
