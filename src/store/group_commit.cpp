#include "store/group_commit.hpp"

#include "detail/thread_name.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>

#include <sqlite3.h>

namespace errand::store::sqlite {

namespace {
const std::string kBegin = "BEGIN IMMEDIATE";
const std::string kSavepoint = "SAVEPOINT op";
const std::string kRelease = "RELEASE op";
const std::string kRollbackTo = "ROLLBACK TO op";
const std::string kCommit = "COMMIT";
}  // namespace

GroupCommit::GroupCommit(std::unique_ptr<Db> db, Options options)
    : db_(std::move(db)), options_(std::move(options)) {
  thread_ = std::jthread([this](const std::stop_token& stop) { loop(stop); });
  errand::detail::name_thread(thread_, "errand-sqlite");
}

GroupCommit::~GroupCommit() {
  {
    const errand::detail::MutexLock lock(mu_);
    closing_ = true;
  }
  work_cv_.notify_all();
  room_cv_.notify_all();
  thread_.join();
}

void OneShot::wait() noexcept {
  while (state_.load(std::memory_order_acquire) == 0) {
    // Returns at once if the word is no longer 0; spurious wake-ups loop.
    syscall(SYS_futex, &state_, FUTEX_WAIT_PRIVATE, 0U, nullptr, nullptr, 0U);
  }
}

void OneShot::notify() noexcept {
  state_.store(1, std::memory_order_release);
  // The waiter may have seen the 1 and gone: waking a word nobody waits on is
  // harmless (its stack is still mapped, and futex waiters tolerate spurious wakes).
  syscall(SYS_futex, &state_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0U);
}

void GroupCommit::run(const Op& op) {
  // From the writer itself (a submit() callback, or a hook it runs, writing
  // synchronously) this would wait for its own thread forever.
  if (std::this_thread::get_id() == thread_.get_id()) {
    throw std::logic_error(
        "sqlite: a synchronous store write from the store's writer thread (a callback or hook "
        "that runs there must hand the write to another thread)");
  }
  Pending p(&op);
  errand::detail::MutexLock lock(mu_);
  if (!lock.wait_for(room_cv_, options_.wait_for_room, [&]() ERRAND_REQUIRES(mu_) {
        return closing_ || queue_.size() < options_.max_queued;
      })) {
    throw StoreError(StoreError::Code::busy, "sqlite: the write queue is full");
  }
  if (closing_) throw StoreError(StoreError::Code::unavailable, "sqlite: the store is closed");
  queue_.push_back(&p);
  lock.unlock();
  work_cv_.notify_one();
  p.done.wait();  // notify() happens after `error` is set
  if (p.error) std::rethrow_exception(p.error);
}

void GroupCommit::submit(Op op, Done done, Submit how) {
  auto p = std::make_unique<Pending>(nullptr);
  p->owned = std::move(op);
  p->op = &p->owned;
  p->callback = std::move(done);
  p->one_write = how.one_write;
  std::exception_ptr refused;
  {
    errand::detail::MutexLock lock(mu_);
    if (how.may_wait) {
      lock.wait_for(room_cv_, options_.wait_for_room, [&]() ERRAND_REQUIRES(mu_) {
        return closing_ || queue_.size() < options_.max_queued;
      });
    }
    if (closing_) {
      refused = std::make_exception_ptr(
          StoreError(StoreError::Code::unavailable, "sqlite: the store is closed"));
    } else if (queue_.size() >= options_.max_queued) {
      refused = std::make_exception_ptr(
          StoreError(StoreError::Code::busy, "sqlite: the write queue is full"));
    } else {
      queue_.push_back(p.get());
    }
  }
  if (refused) {
    p->error = refused;
    finish(p.release());
    return;
  }
  (void)p.release();  // the writer owns it now (it is in queue_)
  work_cv_.notify_one();
}

void GroupCommit::finish(Pending* p) noexcept {
  if (!p->callback) {
    p->done.notify();  // p may be gone right after this
    return;
  }
  // Everything the callback gets is moved to it and the Pending is gone
  // first: once the callback has told its waiter, this thread holds no
  // reference to the error (whose last release is then the waiter's).
  auto callback = std::move(p->callback);
  auto error = std::move(p->error);
  delete p;  // NOLINT(cppcoreguidelines-owning-memory): submit() released it to us
  try {
    callback(std::move(error));
  } catch (...) {  // NOLINT(bugprone-empty-catch): documented: a callback must not throw
  }
}

std::size_t GroupCommit::queued() {
  const errand::detail::MutexLock lock(mu_);
  return queue_.size();
}

void GroupCommit::loop(const std::stop_token& /*stop*/) {
  std::deque<Pending*> batch;
  while (true) {
    {
      errand::detail::MutexLock lock(mu_);
      lock.wait(work_cv_, [&]() ERRAND_REQUIRES(mu_) { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    room_cv_.notify_all();
    commit_batch(batch);
    for (Pending* p : batch) finish(p);
    batch.clear();
  }
}

void GroupCommit::rollback_quietly() noexcept {
  try {
    if (db_->in_transaction()) db_->exec("ROLLBACK");
  } catch (...) {  // NOLINT(bugprone-empty-catch): the caller is already reporting an error
  }
}

bool GroupCommit::run_ops(std::deque<Pending*>& batch) {
  TransactionBuffer* const deferred = options_.deferred;
  const auto fail_all = [&](const std::exception_ptr& error) {
    for (Pending* p : batch) p->error = error;
    rollback_quietly();
    return false;
  };
  if (batch.size() == 1) {
    // Alone, an operation needs no savepoint: if it fails, the transaction
    // (which holds only it) is rolled back.
    try {
      (*batch.front()->op)(*db_);
      return true;
    } catch (...) {
      return fail_all(std::current_exception());
    }
  }
  for (Pending* p : batch) {
    const std::size_t mark = deferred != nullptr ? deferred->mark() : 0;
    if (p->one_write) {
      const auto changes_before = sqlite3_total_changes64(db_->raw());
      try {
        (*p->op)(*db_);
      } catch (...) {
        p->error = std::current_exception();
        // SQLite undid the failed statement alone, or the whole transaction.
        // An operation that threw after its write succeeded broke its
        // promise: nothing can undo that write alone, so the batch fails.
        if (!db_->in_transaction() || sqlite3_total_changes64(db_->raw()) != changes_before) {
          return fail_all(p->error);
        }
        if (deferred != nullptr) deferred->undo_to(mark);
      }
      continue;
    }
    try {
      db_->run(kSavepoint);
      try {
        (*p->op)(*db_);
        db_->run(kRelease);
      } catch (...) {
        p->error = std::current_exception();
        // SQLite may roll the whole transaction back by itself (disk full):
        // then every operation of the batch is lost.
        if (!db_->in_transaction()) return fail_all(p->error);
        db_->run(kRollbackTo);
        db_->run(kRelease);
        if (deferred != nullptr) deferred->undo_to(mark);
      }
    } catch (...) {
      return fail_all(std::current_exception());  // the savepoint machinery failed
    }
  }
  return true;
}

GroupCommit::Health GroupCommit::health() const {
  if (!failing_.load(std::memory_order_relaxed)) return {};
  const errand::detail::MutexLock lock(health_mu_);
  return health_;
}

bool GroupCommit::note_failure(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const StoreError& e) {
    if (e.code() != StoreError::Code::full && e.code() != StoreError::Code::unavailable) {
      return false;
    }
    try {
      const errand::detail::MutexLock lock(health_mu_);
      health_ = {false, e.code() == StoreError::Code::full, e.what()};
      failing_ = true;
    } catch (...) {  // NOLINT(bugprone-empty-catch): allocation failure: health stays as it was
    }
    return true;
  } catch (...) {  // a caller's own error says nothing of the store
    return false;
  }
}

void GroupCommit::note_commit() noexcept {
  if (!failing_.load(std::memory_order_relaxed)) return;
  const errand::detail::MutexLock lock(health_mu_);
  if (health_.full && options_.has_room) {
    try {
      if (!options_.has_room(*db_)) return;
    } catch (...) {
      return;
    }
  }
  health_ = {};
  failing_ = false;
}

void GroupCommit::commit_batch(std::deque<Pending*>& batch) {
  const auto start = std::chrono::steady_clock::now();
  const auto changes_before = sqlite3_total_changes64(db_->raw());
  // Whatever the transaction deferred ends with it, committed or not.
  struct Discard {
    TransactionBuffer* deferred;
    ~Discard() {
      if (deferred != nullptr) deferred->discard();
    }
  } const discard{options_.deferred};
  try {
    db_->run(kBegin);
  } catch (...) {
    for (Pending* p : batch) p->error = std::current_exception();
    note_failure(batch.front()->error);
    return;
  }
  if (!run_ops(batch)) {
    note_failure(batch.front()->error);
    return;
  }
  try {
    if (options_.deferred != nullptr) options_.deferred->flush(*db_);
    db_->run(kCommit);
  } catch (...) {
    const auto error = std::current_exception();
    rollback_quietly();
    for (Pending* p : batch) p->error = error;
    note_failure(error);
    return;
  }
  // One operation that hit a full disk inside its savepoint fails alone; it
  // still says the disk is full.
  bool store_failed = false;
  for (Pending* p : batch) {
    if (p->error && note_failure(p->error)) store_failed = true;
  }
  // Only a transaction that wrote rows proves the disk takes writes again: a
  // claim that found nothing commits without writing a page.
  if (!store_failed && sqlite3_total_changes64(db_->raw()) != changes_before) note_commit();
  if (options_.on_commit) {
    options_.on_commit(batch.size(), std::chrono::steady_clock::now() - start);
  }
}

}  // namespace errand::store::sqlite
