#pragma once
// Internal: group commit. One writer thread owns the write connection; callers
// hand it operations and block until the transaction holding theirs has
// committed. Whatever queued up while the previous transaction was committing
// goes into the next one (up to max_batch), so N concurrent writers cost one
// fsync rather than N. Each operation runs inside its own SAVEPOINT: one that
// throws is rolled back alone and its caller gets the exception; the others
// commit. An operation submitted as `one_write` (it changes the database with
// at most one statement) runs without one: SQLite undoes a failed statement by
// itself, or, if it cannot, the whole transaction, which fails the batch. If
// COMMIT itself fails, every caller in the batch gets that error.
//
// The queue is bounded (max_queued): a caller that finds it full waits up to
// `wait_for_room`, then gets StoreError(busy). No operation is ever dropped
// silently: each caller returns only after its operation committed or failed.
//
// submit() is the same without the wait, for callers that must not block (an
// I/O thread): the outcome goes to a callback on the writer thread, and a full
// queue is an immediate busy error.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "errand/detail/thread_annotations.hpp"
#include "store/sqlite_db.hpp"

namespace errand::store::sqlite {

// Wakes exactly one waiter, once. notify() is the writer's last touch of the
// object (the waiter may destroy it as soon as it sees the flag), and wait()
// sleeps in the kernel at once: libstdc++ 12's binary_semaphore spins with
// sched_yield first, which showed as 6.5% of the CPU under enqueue load.
class OneShot {
 public:
  void wait() noexcept;
  void notify() noexcept;

 private:
  std::atomic<std::uint32_t> state_{0};  // a futex word: 0 waiting, 1 notified
};

// What operations defer to the end of their transaction (errand's per-queue
// counts): written by flush() just before COMMIT. GroupCommit takes a mark
// before each operation and undoes back to it when it rolls that operation
// back, and calls discard() when the transaction has ended, committed or not.
// Called on the writer thread only.
class TransactionBuffer {
 public:
  virtual ~TransactionBuffer() = default;
  [[nodiscard]] virtual std::size_t mark() const noexcept = 0;
  virtual void undo_to(std::size_t mark) noexcept = 0;
  // May throw: the transaction then fails as if COMMIT had.
  virtual void flush(Db& db) = 0;
  virtual void discard() noexcept = 0;

 protected:
  TransactionBuffer() = default;
  TransactionBuffer(const TransactionBuffer&) = default;
  TransactionBuffer& operator=(const TransactionBuffer&) = default;
};

class GroupCommit {
 public:
  using Op = std::function<void(Db&)>;
  using OnCommit = std::function<void(std::size_t ops, std::chrono::nanoseconds took)>;
  // nullptr: committed. Runs on the writer thread after the commit, so it must
  // be quick and must not throw (what it throws is dropped). The error is
  // handed over: move it on rather than copy it.
  using Done = std::function<void(std::exception_ptr)>;

  struct Options {
    std::size_t max_batch = 1024;
    std::size_t max_queued = 65536;
    std::chrono::milliseconds wait_for_room{5000};
    OnCommit on_commit{};
    // After a failure for a full disk, whether there is room again: a commit
    // that rewrote rows in place proves nothing (a heartbeat needs no new
    // page), so health() stays "full" until this says yes as well. None: any
    // commit that changed rows clears it.
    std::function<bool(Db&)> has_room{};
    // Must outlive the GroupCommit. None: operations defer nothing.
    TransactionBuffer* deferred = nullptr;
  };

  GroupCommit(std::unique_ptr<Db> db, Options options);
  ~GroupCommit();  // runs what is queued, then joins
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Runs `op` on the writer thread inside a transaction; returns when it has
  // committed; rethrows what `op` or COMMIT threw.
  void run(const Op& op);
  struct Submit {
    // A caller that may block (not an I/O thread) waits up to
    // `wait_for_room` for room in a full queue.
    bool may_wait = false;
    // The operation changes the database with one statement at most (reads
    // before it are free) and throws nothing after that statement, so it
    // needs no savepoint of its own: ~4k instructions saved per operation, a
    // twentieth of an enqueue's writing. (One that throws after writing
    // anyway fails its whole batch, which nothing else could undo.)
    bool one_write = false;
  };
  // Queues `op` and returns; `done` gets its outcome. When the queue is full
  // (after waiting for room up to `wait_for_room` if `how.may_wait`, else at
  // once) or the store closing, `done` is called here, before submit()
  // returns, with StoreError busy / unavailable and `op` never runs.
  void submit(Op op, Done done, Submit how);
  void submit(Op op, Done done) { submit(std::move(op), std::move(done), Submit{}); }
  // Operations waiting for the next transaction.
  [[nodiscard]] std::size_t queued();
  // Whether the last transaction committed; when it failed because the disk
  // (or the size limit) is full or the file cannot be written, why. The next
  // commit that succeeds clears it. Cheap: no I/O.
  struct Health {
    bool ready = true;
    bool full = false;
    std::string reason{};
  };
  [[nodiscard]] Health health() const;

 private:
  // Lives on the caller's stack until `done` is released; the writer never
  // touches it after that.
  struct Pending {
    explicit Pending(const Op* o) : op(o) {}
    const Op* op;
    std::exception_ptr error;
    OneShot done;  // each caller is woken alone, not every waiter per batch
    // submit() only: the Pending owns its operation, the writer deletes it.
    Op owned;
    Done callback;
    bool one_write = false;
  };
  static void finish(Pending* p) noexcept;
  void loop(const std::stop_token& stop);
  void commit_batch(std::deque<Pending*>& batch);
  // Runs every operation of the open transaction; false if the transaction is
  // lost (every operation then carries the error).
  bool run_ops(std::deque<Pending*>& batch);
  void rollback_quietly() noexcept;

  // True when `error` says the store cannot write (then health() says so).
  bool note_failure(const std::exception_ptr& error) noexcept;
  void note_commit() noexcept;

  std::unique_ptr<Db> db_;
  Options options_;
  std::atomic<bool> failing_{false};  // health_ is not ready: a commit must clear it
  mutable errand::detail::Mutex health_mu_;
  Health health_ ERRAND_GUARDED_BY(health_mu_);
  errand::detail::Mutex mu_;
  std::condition_variable work_cv_;  // writer waits for work
  std::condition_variable room_cv_;  // callers wait for room
  std::deque<Pending*> queue_ ERRAND_GUARDED_BY(mu_);
  bool closing_ ERRAND_GUARDED_BY(mu_) = false;
  std::jthread thread_;
};

}  // namespace errand::store::sqlite
