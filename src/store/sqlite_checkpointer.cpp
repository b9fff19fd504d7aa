#include "sqlite_checkpointer.hpp"

#include <sqlite3.h>

#include "detail/thread_name.hpp"
#include "sqlite_db.hpp"

namespace errand::store::sqlite {

Checkpointer::Checkpointer(const std::string& path, int busy_timeout_ms, bool synchronous_full)
    : db_(std::make_unique<Db>(path, SQLITE_OPEN_READWRITE, busy_timeout_ms)) {
  db_->exec(synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  // Its own commits (none) must not checkpoint either: only request() does.
  db_->exec("PRAGMA wal_autocheckpoint = 0");
  thread_ = std::jthread([this] { loop(); });
  errand::detail::name_thread(thread_, "errand-ckpt");
}

Checkpointer::~Checkpointer() {
  {
    const errand::detail::MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Checkpointer::request() noexcept {
  if (requested_.exchange(true, std::memory_order_acq_rel)) return;  // one is pending
  {
    const errand::detail::MutexLock lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::loop() {
  while (true) {
    {
      errand::detail::MutexLock lock(mu_);
      lock.wait(cv_, [&]() ERRAND_REQUIRES(mu_) { return wake_ || stopping_; });
      if (stopping_) return;
      wake_ = false;
    }
    // Cleared before the copy: a commit during it asks again, and the log it
    // grew is copied next round.
    requested_.store(false, std::memory_order_release);
    sqlite3_wal_checkpoint_v2(db_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    runs_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace errand::store::sqlite
