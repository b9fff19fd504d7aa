#pragma once
// Internal: SQLite's memory, with small blocks kept per thread for reuse.
// Debian's SQLite is built without lookaside (SQLITE_OMIT_LOOKASIDE), so each
// statement execution allocates and frees every cursor, record buffer and
// register it uses: ~40 pairs per statement, 12% of the writer thread's
// instructions in a drain (callgrind), each through glibc's general paths.
// These methods (for sqlite3_config(SQLITE_CONFIG_MALLOC)) keep freed blocks
// of up to kLargestCached bytes in 16 size classes, per thread, and hand them
// out again; larger blocks go to malloc.
//
// Thread-safety: SQLite may call them from any thread; each thread has its
// own lists, so no lock is taken. A block freed on another thread than the
// one that allocated it joins the freeing thread's lists.
// Bounded: each list keeps at most kCachedPerClass blocks (then free());
// a thread's lists are freed when it exits.
// On error: xMalloc returns nullptr when malloc does (SQLITE_NOMEM).

struct sqlite3_mem_methods;

namespace errand::store::sqlite {

inline constexpr int kLargestCached = 1024;
inline constexpr int kCachedPerClass = 64;

// The methods, with static storage (SQLite keeps the pointer's contents).
const sqlite3_mem_methods& cached_memory_methods() noexcept;

// How many free blocks the calling thread keeps now (for tests).
int cached_blocks_on_this_thread() noexcept;

}  // namespace errand::store::sqlite
