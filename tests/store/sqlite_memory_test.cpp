// SQLite's memory methods that keep small blocks per thread (a white-box test
// of src/store/sqlite_memory.*), alone and under a store used from several
// threads.
#include "store/sqlite_memory.hpp"

#include <sqlite3.h>

#include <cstring>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "errand/store/sqlite_store.hpp"
#include "store/store_contract.hpp"
#include "support/temp_dir.hpp"

namespace errand::store::sqlite {
namespace {

const sqlite3_mem_methods& m() {
  return cached_memory_methods();
}

TEST(SqliteMemory, ABlockHoldsWhatWasAskedAndKeepsItsContentsAsItGrows) {
  for (const int n : {1, 63, 64, 65, 1000, 1024, 1025, 5000}) {
    auto* p = static_cast<unsigned char*>(m().xMalloc(m().xRoundup(n)));
    ASSERT_NE(p, nullptr);
    EXPECT_GE(m().xSize(p), n);
    EXPECT_EQ(m().xSize(p), m().xRoundup(n)) << n;
    for (int i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(i * 7);
    auto* q = static_cast<unsigned char*>(m().xRealloc(p, m().xRoundup(n * 3)));
    ASSERT_NE(q, nullptr);
    EXPECT_GE(m().xSize(q), n * 3);
    for (int i = 0; i < n; ++i) ASSERT_EQ(q[i], static_cast<unsigned char>(i * 7)) << n;
    // Smaller again: the same block, contents kept.
    EXPECT_EQ(m().xRealloc(q, m().xRoundup(n)), q);
    EXPECT_EQ(q[n - 1], static_cast<unsigned char>((n - 1) * 7));
    m().xFree(q);
  }
  m().xFree(nullptr);  // as free(NULL)
}

void reused_and_bounded() {
  void* p = m().xMalloc(m().xRoundup(100));
  m().xFree(p);
  EXPECT_EQ(m().xMalloc(m().xRoundup(100)), p);  // the same block again
  m().xFree(p);

  const int before = cached_blocks_on_this_thread();
  std::vector<void*> blocks;
  for (int i = 0; i < 3 * kCachedPerClass; ++i) blocks.push_back(m().xMalloc(m().xRoundup(200)));
  for (void* b : blocks) m().xFree(b);
  const int kept = cached_blocks_on_this_thread() - before;
  EXPECT_GT(kept, 0);
  EXPECT_LE(kept, kCachedPerClass);

  // Larger blocks are not kept.
  const int small = cached_blocks_on_this_thread();
  m().xFree(m().xMalloc(m().xRoundup(kLargestCached + 1)));
  EXPECT_EQ(cached_blocks_on_this_thread(), small);
}

// On a thread of its own: the lists of a thread that used SQLite before
// (this binary's other tests) may be full already.
TEST(SqliteMemory, AFreedSmallBlockIsReusedAndAThreadKeepsBoundedLists) {
  std::thread([] { reused_and_bounded(); }).join();
}

TEST(SqliteMemory, SizesPastAnIntFailCleanly) {
  EXPECT_EQ(m().xRoundup(std::numeric_limits<int>::max()), 0);  // SQLite fails the allocation
  EXPECT_EQ(m().xMalloc(std::numeric_limits<int>::max()), nullptr);
  void* p = m().xMalloc(m().xRoundup(10));
  EXPECT_EQ(m().xRealloc(p, std::numeric_limits<int>::max()), nullptr);
  m().xFree(p);  // still valid, as after a failed realloc()
}

TEST(SqliteMemory, ABlockFreedOnAnotherThreadServesThatThread) {
  void* p = m().xMalloc(m().xRoundup(300));
  std::thread t([p] {
    m().xFree(p);
    EXPECT_EQ(cached_blocks_on_this_thread(), 1);
    void* again = m().xMalloc(m().xRoundup(300));
    EXPECT_EQ(again, p);
    m().xFree(again);
    // Left in this thread's list: freed when the thread ends (LeakSanitizer
    // reports the block otherwise).
  });
  t.join();
}

// The whole store on these methods: writes from several threads, reads
// beside them, claims and completions; then SQLite back to its own methods.
TEST(SqliteMemory, AStoreWorksOnItFromSeveralThreads) {
  ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);  // no connection is open between tests
  sqlite3_mem_methods original{};
  ASSERT_EQ(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &original), SQLITE_OK);
  ASSERT_EQ(sqlite3_config(SQLITE_CONFIG_MALLOC, &cached_memory_methods()), SQLITE_OK);
  {
    test::TempDir dir;
    SqliteStore s({.path = (dir.path() / "m.db").string()});
    constexpr int kThreads = 3;
    constexpr int kEach = 200;
    std::vector<std::thread> writers;
    for (int w = 0; w < kThreads; ++w) {
      writers.emplace_back([&s] {
        for (int i = 0; i < kEach; ++i) {
          NewTask t;
          t.id = new_task_id(t0);
          t.type = "t";
          t.payload = std::string(static_cast<std::size_t>(i) * 5, 'x');  // several size classes
          s.enqueue(std::move(t), t0);
          if (i % 50 == 0) (void)s.list({});
        }
      });
    }
    for (auto& w : writers) w.join();
    std::set<std::string> done;
    for (;;) {
      const auto claimed = s.claim("default", 64, {"w~1", t0 + std::chrono::seconds(30)}, t0);
      if (claimed.empty()) break;
      for (const auto& r : claimed) {
        ASSERT_TRUE(s.complete(r.id, "w~1", R"({"ok":true})", t0));
        done.insert(r.id);
      }
    }
    EXPECT_EQ(done.size(), std::size_t{kThreads * kEach});
  }
  ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);
  ASSERT_EQ(sqlite3_config(SQLITE_CONFIG_MALLOC, &original), SQLITE_OK);
}

}  // namespace
}  // namespace errand::store::sqlite
