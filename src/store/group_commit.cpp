#include "store/group_commit.hpp"

namespace errand::store::sqlite {

GroupCommit::GroupCommit(std::unique_ptr<Db> db, Options options)
    : db_(std::move(db)), options_(std::move(options)) {
  thread_ = std::jthread([this](const std::stop_token& stop) { loop(stop); });
}

GroupCommit::~GroupCommit() {
  {
    const std::lock_guard lock(mu_);
    closing_ = true;
  }
  work_cv_.notify_all();
  room_cv_.notify_all();
  thread_.join();
}

void GroupCommit::run(const Op& op) {
  Pending p{&op, nullptr, false};
  std::unique_lock lock(mu_);
  if (!room_cv_.wait_for(lock, options_.wait_for_room,
                         [&] { return closing_ || queue_.size() < options_.max_queued; })) {
    throw StoreError(StoreError::Code::busy, "sqlite: the write queue is full");
  }
  if (closing_) throw StoreError(StoreError::Code::unavailable, "sqlite: the store is closed");
  queue_.push_back(&p);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return p.done; });
  if (p.error) std::rethrow_exception(p.error);
}

std::size_t GroupCommit::queued() {
  const std::lock_guard lock(mu_);
  return queue_.size();
}

void GroupCommit::loop(const std::stop_token& /*stop*/) {
  std::deque<Pending*> batch;
  while (true) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    room_cv_.notify_all();
    commit_batch(batch);
    {
      const std::lock_guard lock(mu_);
      for (Pending* p : batch) p->done = true;
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

void GroupCommit::commit_batch(std::deque<Pending*>& batch) {
  const auto start = std::chrono::steady_clock::now();
  try {
    db_->exec("BEGIN IMMEDIATE");
  } catch (...) {
    for (Pending* p : batch) p->error = std::current_exception();
    return;
  }
  for (Pending* p : batch) {
    try {
      db_->exec("SAVEPOINT op");
      try {
        (*p->op)(*db_);
        db_->exec("RELEASE op");
      } catch (...) {
        p->error = std::current_exception();
        if (!db_->in_transaction()) {
          // SQLite rolled the whole transaction back: every op of the batch is lost.
          for (Pending* q : batch) q->error = p->error;
          return;
        }
        db_->exec("ROLLBACK TO op");
        db_->exec("RELEASE op");
      }
    } catch (...) {
      // The savepoint machinery itself failed: the transaction is unusable.
      const auto error = std::current_exception();
      try {
        db_->exec("ROLLBACK");
      } catch (...) {  // NOLINT(bugprone-empty-catch): already reporting `error`
      }
      for (Pending* q : batch) q->error = error;
      return;
    }
  }
  try {
    db_->exec("COMMIT");
  } catch (...) {
    const auto error = std::current_exception();
    try {
      db_->exec("ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): already reporting `error`
    }
    for (Pending* p : batch) p->error = error;
    return;
  }
  if (options_.on_commit) {
    options_.on_commit(batch.size(), std::chrono::steady_clock::now() - start);
  }
}

}  // namespace errand::store::sqlite
