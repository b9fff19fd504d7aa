#pragma once
// Internal: the write-ahead log's checkpoints, off the writer thread. SQLite
// runs its automatic checkpoint inside the COMMIT that crosses the threshold:
// on the group commit's thread, which then copies ~1000 pages into the
// database file and, at synchronous=NORMAL, fsyncs it, while every enqueue
// waits (commits of 5–25 ms, the tail of the enqueue's latency). Here the
// writer's WAL hook only asks; a thread with a connection of its own copies
// the pages (a PASSIVE checkpoint runs beside the writer, which keeps
// appending), and the next write transaction after a complete copy starts
// the log over.
//
// Thread-safety: request() may be called from any thread (the writer's WAL
// hook); everything else happens on the checkpointer's own thread. Bounded:
// one pending request at most (requests while one is pending are one).
// A checkpoint that fails is left to the next request. The writer's hard
// bound, a RESTART past wal_limit_bytes, is its own; but while a copy here is
// under way the RESTART finds the checkpoint lock taken (SQLITE_BUSY, with no
// busy wait for that lock) and the next commit tries again: the log can pass
// the bound by what is committed during one copy.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <string>
#include <thread>

#include "errand/detail/thread_annotations.hpp"

namespace errand::store::sqlite {

class Db;

class Checkpointer {
 public:
  // Opens its own connection to `path` (read-write, `busy_timeout_ms`), with
  // the writer's synchronous setting so that a checkpoint syncs as it would.
  Checkpointer(const std::string& path, int busy_timeout_ms, bool synchronous_full);
  ~Checkpointer();  // finishes a checkpoint under way, then joins
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Asks for a PASSIVE checkpoint soon. Cheap when one is already asked for:
  // an atomic exchange, no lock, no wake-up.
  void request() noexcept;
  // Checkpoints run so far (tests, metrics).
  [[nodiscard]] std::uint64_t runs() const noexcept {
    return runs_.load(std::memory_order_relaxed);
  }

 private:
  void loop();

  std::unique_ptr<Db> db_;  // used on the thread only
  std::atomic<bool> requested_{false};
  std::atomic<std::uint64_t> runs_{0};
  errand::detail::Mutex mu_;
  std::condition_variable cv_;
  bool wake_ ERRAND_GUARDED_BY(mu_) = false;
  bool stopping_ ERRAND_GUARDED_BY(mu_) = false;
  std::jthread thread_;  // last: started once the rest exists
};

}  // namespace errand::store::sqlite
