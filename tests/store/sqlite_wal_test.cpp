// The SQLite store under the dashboard's load: 200,000 tasks stored, the
// filtered task views polled without pause by two readers while tasks are
// enqueued and drained. Every view answers its page from an index (no sort of
// a queue's tasks), and the write-ahead log stays within its bound although a
// reader is almost always inside it.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "errand/store/sqlite_store.hpp"
#include "support/temp_dir.hpp"

namespace errand::store {
namespace {

using namespace std::chrono_literals;

const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};
constexpr const char* kQueues[] = {"mail", "reports", "hooks", "default"};

NewTask task(int i) {
  NewTask t;
  t.id = new_task_id(t0);
  t.type = i % 5 == 0 ? "report.build" : "email.send";
  t.queue = kQueues[i % 4];
  t.payload = R"({"to":"someone@example.org","subject":"hello"})";
  t.max_attempts = 1;
  return t;
}

std::uintmax_t size_of(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

TEST(SqliteWal, StaysBoundedWhileFilteredViewsArePolledUnderWrites) {
  test::TempDir dir;
  const auto path = dir.path() / "errand.db";
  constexpr std::uint64_t kWalLimit = 8ULL << 20U;
  SqliteStore s({.path = path.string(), .wal_limit_bytes = kWalLimit});

  constexpr int kStored = 200'000;
  for (int i = 0; i < kStored;) {
    std::vector<NewTask> batch;
    for (int k = 0; k < 1000; ++k, ++i) batch.push_back(task(i));
    s.enqueue(std::move(batch), t0);
  }

  std::atomic<bool> done{false};
  std::atomic<std::uintmax_t> max_wal{0};
  std::atomic<int> pages{0};
  std::atomic<int> wrong{0};
  const auto wal = std::filesystem::path(path.string() + "-wal");
  auto reader = [&](int which) {
    const std::vector<ListQuery> views = {{.queue = "mail", .state = TaskState::pending},
                                          {.state = TaskState::retrying},
                                          {.queue = "hooks"},
                                          {.state = TaskState::dead},
                                          {.queue = "mail", .state = TaskState::dead},
                                          {.type = "report.build"},
                                          {.queue = "default", .type = "report.build"},
                                          {}};
    for (std::size_t n = static_cast<std::size_t>(which); !done.load(); ++n) {
      const auto& q = views[n % views.size()];
      for (const auto& t : s.list(q).tasks) {
        if ((q.queue && t.queue != *q.queue) || (q.state && t.state != *q.state) ||
            (q.type && t.type != *q.type)) {
          ++wrong;
        }
      }
      ++pages;
      auto seen = max_wal.load();
      const auto now = size_of(wal);
      while (now > seen && !max_wal.compare_exchange_weak(seen, now)) {
      }
    }
  };
  std::vector<std::jthread> readers;
  readers.emplace_back(reader, 0);
  readers.emplace_back(reader, 1);

  // Writes: 10,000 more tasks enqueued in batches, while two workers drain
  // 5,000 of the mail queue's, failing every tenth.
  std::jthread producer([&] {
    for (int i = 0; i < 10'000;) {
      std::vector<NewTask> batch;
      for (int k = 0; k < 100; ++k, ++i) batch.push_back(task(i));
      s.enqueue(std::move(batch), t0);
    }
  });
  std::atomic<int> drained{0};
  auto worker = [&](const std::string& owner) {
    while (drained.load() < 5'000) {
      const auto got = s.claim("mail", 32, {owner, t0 + 60s}, t0);
      if (got.empty()) break;
      for (const auto& t : got) {
        if (++drained % 10 == 0) {
          s.fail(t.id, owner, "no", std::nullopt, t0);
        } else {
          s.complete(t.id, owner, "{}", t0);
        }
      }
    }
  };
  {
    std::jthread w1(worker, "w1");
    std::jthread w2(worker, "w2");
  }
  producer.join();
  done = true;
  readers.clear();

  EXPECT_GE(drained.load(), 5'000);
  EXPECT_GT(pages.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  // The bound plus what one group commit may write before its checkpoint runs.
  EXPECT_LE(max_wal.load(), 2 * kWalLimit) << "the WAL grew to " << max_wal.load() << " bytes";
  EXPECT_LE(size_of(wal), 2 * kWalLimit);
}

}  // namespace
}  // namespace errand::store
