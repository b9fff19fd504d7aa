// Durability under SIGKILL: a child process enqueues and processes tasks on a
// SQLite file and is killed mid-stream. Restarted on the same file, every task
// whose enqueue was acknowledged is there and ends succeeded exactly once in
// state (execution is at least once: the killed child's active tasks run again).
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <set>

#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

extern char** environ;

namespace errand::tasks {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> acked_ids(const std::filesystem::path& file) {
  std::vector<std::string> ids;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() == 26) ids.push_back(line);  // a torn last line was never read back
  }
  return ids;
}

TEST(CrashTest, EveryAcknowledgedTaskSurvivesSigkill) {
  test::TempDir dir;
  const auto db = (dir.path() / "errand.db").string();
  const auto acks = dir.path() / "acks.txt";

  std::string child = ERRAND_CRASH_CHILD;
  std::string db_arg = db;
  std::string ack_arg = acks.string();
  std::vector<char*> argv = {child.data(), db_arg.data(), ack_arg.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, child.c_str(), nullptr, nullptr, argv.data(), environ), 0);

  // Kill it mid-stream: while it is still enqueueing and processing.
  const bool enough = test::eventually([&] { return acked_ids(acks).size() >= 400; }, 120s);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(enough) << "the child did not get going";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it was killed";

  const auto ids = acked_ids(acks);
  auto store = std::make_shared<store::SqliteStore>(store::SqliteOptions{.path = db});
  for (const auto& id : ids) ASSERT_TRUE(store->get(id).has_value()) << "lost acked task " << id;

  RuntimeConfig cfg;
  cfg.queues = {{"default", 4, 1}};
  cfg.lease = 2s;
  cfg.poll_interval = 20ms;
  cfg.owner = "restarted";
  Runtime rt(store, cfg);
  rt.handle_raw("work", [](TaskContext&) {});
  rt.start();
  const auto all_succeeded = [&] {
    for (const auto& q : store->queues()) {
      if (q.scheduled + q.pending + q.active + q.retrying + q.dead + q.cancelled > 0) return false;
    }
    return true;
  };
  ASSERT_TRUE(test::eventually(all_succeeded, 120s));  // includes the dead child's leases
  for (const auto& id : ids) {
    const auto r = store->get(id);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->state, store::TaskState::succeeded) << id;
  }
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
}

}  // namespace
}  // namespace errand::tasks
