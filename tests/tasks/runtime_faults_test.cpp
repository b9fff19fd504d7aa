// The runtime when its store fails: claims, heartbeats and the recording of
// outcomes fail on chosen calls (test::FaultyStore). Each failure is logged
// and counted (Hooks::store_failed); no task is lost, and none runs twice
// unless its lease was lost first.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errand/store/memory_store.hpp"
#include "errand/tasks/runtime.hpp"
#include "support/faulty_store.hpp"
#include "support/log_capture.hpp"
#include "support/wait.hpp"

namespace errand::tasks {
namespace {

using namespace std::chrono_literals;
using store::TaskState;
using Call = test::FaultyStore::Call;

const store::TimePoint epoch{std::chrono::milliseconds(1'700'000'000'000)};

class RuntimeFaults : public ::testing::Test {
 protected:
  RuntimeConfig config() {
    RuntimeConfig c;
    c.queues = {{"default", 1, 1}};
    c.poll_interval = 5ms;
    c.maintenance_tick = 5ms;
    c.clock = clock;
    c.lease = 30s;
    c.retry = {.base = 1s, .cap = 1s};
    c.owner = "test-owner";
    c.logger = log.logger();
    c.hooks.store_failed = [this](std::string_view op) {
      const std::lock_guard lock(mu);
      ++store_failures[std::string(op)];
    };
    c.hooks.stuck = [this](const AttemptInfo& i) {
      if (stuck_hook) stuck_hook(i);
    };
    c.hooks.after_attempt = [this](const AttemptInfo&, AttemptOutcome o, std::chrono::nanoseconds) {
      const std::lock_guard lock(mu);
      outcomes.push_back(o);
    };
    return c;
  }
  Runtime& start() {
    runtime = std::make_unique<Runtime>(faulty, config());
    runtime->handle_raw("job", [this](TaskContext& t) -> Outcome {
      ++runs;
      if (fail_first && t.attempt() == 1) return Outcome::retry("first attempt fails", 0ms);
      while (!gate.load()) {
        if (!t.sleep_for(1ms)) return Outcome::cancelled();
      }
      return Outcome::done();
    });
    runtime->start();
    return *runtime;
  }
  bool reaches(const std::string& id, TaskState state) {
    return test::eventually([&] {
      auto r = faulty->get(id);
      return r && r->state == state;
    });
  }
  bool logged(std::string_view needle) const { return log.contains(needle); }
  std::size_t failures_of(const std::string& op) {
    const std::lock_guard lock(mu);
    return store_failures[op];
  }
  std::size_t count(AttemptOutcome o) {
    const std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::count(outcomes.begin(), outcomes.end(), o));
  }

  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(epoch);
  std::shared_ptr<test::FaultyStore> faulty =
      std::make_shared<test::FaultyStore>(std::make_shared<store::MemoryStore>());
  std::atomic<int> runs{0};
  std::atomic<bool> gate{true};
  bool fail_first = false;
  std::function<void(const AttemptInfo&)> stuck_hook;  // set before start()
  std::mutex mu;
  test::LogCapture log;
  std::map<std::string, std::size_t> store_failures;
  std::vector<AttemptOutcome> outcomes;
  std::unique_ptr<Runtime> runtime;  // last: stopped before what it uses goes
};

TEST_F(RuntimeFaults, AFailedClaimIsLoggedCountedAndTheTaskRunsOnTheNextOne) {
  faulty->fail_nth(Call::claim, 1);
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_GE(faulty->failures(Call::claim), 1U);
  EXPECT_TRUE(logged("claim failed"));
  EXPECT_GE(failures_of("claim"), 1U);
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(RuntimeFaults, AFailedHeartbeatLeavesTheTaskWithItsWorker) {
  gate = false;
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(test::eventually([&] { return runs.load() == 1; }));
  faulty->fail_nth(Call::extend_leases, 1);
  const auto before = faulty->calls(Call::extend_leases);
  clock->advance(11s);  // past lease / 3: the heartbeat fails
  ASSERT_TRUE(test::eventually([&] { return faulty->failures(Call::extend_leases) == 1; }));
  EXPECT_TRUE(test::eventually([&] { return failures_of("extend_leases") == 1; }));
  EXPECT_TRUE(logged("heartbeat failed"));
  clock->advance(11s);  // the next one succeeds, well inside the lease
  ASSERT_TRUE(test::eventually([&] { return faulty->calls(Call::extend_leases) >= before + 2; }));
  gate = true;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(runs.load(), 1);  // never reclaimed, never run twice
  EXPECT_EQ(count(AttemptOutcome::lost), 0U);
}

// A success whose commit failed while the store was away is committed again
// by the maintenance thread: the task does not run twice.
TEST_F(RuntimeFaults, ASuccessIsCommittedAgainAfterABriefOutage) {
  faulty->fail_nth(Call::complete, 1);
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  // The after_attempt hook follows the commit.
  ASSERT_TRUE(test::eventually([&] { return count(AttemptOutcome::succeeded) == 1; }));
  EXPECT_TRUE(logged("retrying while the lease holds"));
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(count(AttemptOutcome::lost), 0);
  // The worker handed the commit to the maintenance thread and went back to
  // the queue; the retried commit can finish before it gets there.
  EXPECT_TRUE(test::eventually([&] { return rt.busy("default") == 0; }));
}

// A handler that returned is neither overdue nor stuck while its success
// waits to be recorded past its deadline (the store is away): no stop
// request, no "stuck" report for a worker that is free.
TEST_F(RuntimeFaults, AReturnedHandlerWhoseSuccessWaitsIsNeitherOverdueNorStuck) {
  faulty->fail_from(Call::complete, 1);
  std::atomic<int> stuck{0};
  stuck_hook = [&stuck](const AttemptInfo&) { ++stuck; };
  auto& rt = start();
  const auto id = rt.enqueue("job", {}, {.timeout = 1s}).id;
  ASSERT_TRUE(test::eventually([&] { return faulty->failures(Call::complete) >= 1; }));
  clock->advance(1s + 5s + 1s);  // past the deadline and stuck_after, inside the lease
  // The commit is tried again with backoff; the watchdog ticks every 5 ms
  // meanwhile.
  const auto failed = faulty->failures(Call::complete);
  ASSERT_TRUE(test::eventually([&] { return faulty->failures(Call::complete) >= failed + 2; }));
  EXPECT_FALSE(logged("deadline passed"));
  EXPECT_FALSE(logged("ignores its stop token"));
  EXPECT_EQ(stuck.load(), 0);
  faulty->heal(Call::complete);
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(runs.load(), 1);
}

// The outcome could not be recorded within a lease: the attempt counts as
// lost, and the task comes back when its lease expires (a lease loss: the
// one case in which a task runs again), then succeeds.
TEST_F(RuntimeFaults, ASuccessThatCannotBeRecordedComesBackAfterItsLease) {
  faulty->fail_from(Call::complete, 1);
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(test::eventually([&] { return faulty->failures(Call::complete) >= 1; }));
  clock->advance(31s);  // the retries give up a lease after the first failure
  ASSERT_TRUE(test::eventually([&] { return count(AttemptOutcome::lost) == 1; }));
  faulty->heal(Call::complete);
  // The runtime has let go of the attempt (so no heartbeat extends its lease).
  ASSERT_TRUE(test::eventually([&] { return rt.busy("default") == 0; }));
  EXPECT_EQ(failures_of("complete"), 1U);
  EXPECT_TRUE(logged("recording the outcome failed"));
  // The lease ran out with the same clock step that made the runtime give
  // up, so the task may already be reclaimed; the next step is past any last
  // heartbeat's lease too.
  clock->advance(31s);
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(faulty->get(id)->attempt, 2);
}

// A store that is away for a moment: the outcome is written again (with
// backoff, while the lease may hold) instead of being left to lease expiry,
// so the task does not run once more because of it.
TEST_F(RuntimeFaults, AnOutcomeIsWrittenAgainWhileTheStoreIsBrieflyAway) {
  fail_first = true;
  faulty->fail_nth(Call::fail, 1);
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(test::eventually([&] { return count(AttemptOutcome::retrying) == 1; }));
  EXPECT_TRUE(logged("retrying the outcome while the lease holds"));
  EXPECT_EQ(count(AttemptOutcome::lost), 0);
  // The retry is due at once (0 ms); no clock step, which could expire the
  // second attempt's lease and make it run a third time.
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(runs.load(), 2);  // the failed run and the retry: none lost
}

// Away for longer than a lease: the attempt is given up as lost, and the
// task comes back through lease expiry.
TEST_F(RuntimeFaults, AFailureThatCannotBeRecordedIsRetriedAfterItsLease) {
  fail_first = true;
  faulty->fail_from(Call::fail, 1);
  auto& rt = start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(test::eventually([&] { return faulty->failures(Call::fail) >= 2; }));
  clock->advance(31s);  // the worker's retries give up a lease after the first failure
  ASSERT_TRUE(test::eventually([&] { return count(AttemptOutcome::lost) == 1; }));
  ASSERT_TRUE(test::eventually([&] { return rt.busy("default") == 0; }));
  EXPECT_EQ(failures_of("fail"), 1U);
  faulty->heal(Call::fail);
  clock->advance(31s);
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(runs.load(), 2);
}

TEST_F(RuntimeFaults, AFailedReclaimIsCountedAndTriedAgain) {
  faulty->fail_nth(Call::reclaim, 1);
  start();
  EXPECT_TRUE(test::eventually([&] { return failures_of("reclaim") == 1; }));
  EXPECT_TRUE(logged("reclaim failed"));
  clock->advance(16s);  // the next reclaim is due at lease / 2
  EXPECT_TRUE(test::eventually([&] { return faulty->calls(Call::reclaim) >= 2; }));
}

}  // namespace
}  // namespace errand::tasks
