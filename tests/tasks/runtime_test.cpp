// The task runtime end to end against real stores. Time-driven behaviour
// (backoff, deadlines, leases, retention, schedules, rate limits) runs on a
// ManualClock: the test moves time and waits on conditions, never sleeps.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "errand/store/memory_store.hpp"
#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"
#include "support/faulty_store.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace errand::tasks {

struct Welcome {
  std::string email;
  int tries = 0;
};
BOOST_DESCRIBE_STRUCT(Welcome, (), (email, tries))

namespace {

using namespace std::chrono_literals;
using store::TaskState;

const store::TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};

class RuntimeTest : public ::testing::Test {
 protected:
  RuntimeConfig config() {
    RuntimeConfig c;
    c.queues = {{"default", 2, 1}};
    c.poll_interval = 5ms;
    c.maintenance_tick = 5ms;
    c.clock = clock;
    c.retry = {.base = 1s, .cap = 10s};
    c.shutdown_grace = 10s;
    c.stuck_after = 1s;
    c.owner = "test-owner";
    c.logger = log.logger();
    return c;
  }
  Runtime& make(RuntimeConfig c) {
    runtime = std::make_unique<Runtime>(store, std::move(c));
    return *runtime;
  }
  Runtime& make() { return make(config()); }

  store::TaskRecord get(const std::string& id) {
    return store->get(id).value_or(store::TaskRecord{});
  }
  bool reaches(const std::string& id, TaskState state) {
    return test::eventually([&] {
      auto r = store->get(id);
      return r && r->state == state;
    });
  }
  bool logged(std::string_view needle) const { return log.contains(needle); }

  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(t0);
  std::shared_ptr<store::Store> store = std::make_shared<store::MemoryStore>();
  test::LogCapture log;
  std::unique_ptr<Runtime> runtime;  // last: stopped before what it uses goes
};

TEST_F(RuntimeTest, RunsATaskAndStoresItsResult) {
  auto& rt = make();
  std::string seen_trace;
  std::string seen_request;
  rt.handle<Welcome>("email.welcome", [&](TaskContext& t, const Welcome& in) {
    seen_trace = t.trace().trace_id;
    seen_request = t.request_id();
    t.log().info("sending");
    return Outcome::done({{"to", in.email}, {"attempt", t.attempt()}});
  });
  rt.start();
  const auto trace = observe::TraceContext::generate();
  const auto e = rt.enqueue_typed("email.welcome", Welcome{"a@b.c", 0},
                                  {.trace = trace, .request_id = "req-7"});
  ASSERT_TRUE(reaches(e.id, TaskState::succeeded));
  const auto r = get(e.id);
  EXPECT_EQ(boost::json::parse(*r.result), boost::json::parse(R"({"to":"a@b.c","attempt":1})"));
  EXPECT_EQ(seen_trace, trace.trace_id);  // the enqueuing request's trace
  EXPECT_EQ(seen_request, "req-7");
  EXPECT_TRUE(logged(R"("msg":"sending")"));
  EXPECT_TRUE(logged(R"("trace_id":")" + trace.trace_id));
  EXPECT_TRUE(logged(R"("task_id":")" + e.id));
}

TEST_F(RuntimeTest, EnqueueAsyncAnswersByCallbackAndTheTaskRuns) {
  auto& rt = make();
  rt.handle<Welcome>("email.welcome", [](TaskContext&, const Welcome& in) {
    return Outcome::done({{"to", in.email}});
  });
  rt.start();
  std::mutex mu;
  std::optional<store::Enqueued> answer;
  std::exception_ptr error;
  rt.enqueue_async("email.welcome", json::to_json(Welcome{"a@b.c", 0}), {},
                   [&](store::Enqueued e, std::exception_ptr err) {
                     const std::lock_guard lock(mu);
                     answer = std::move(e);
                     error = std::move(err);
                   });
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return answer.has_value();
  }));
  std::string id;
  {
    const std::lock_guard lock(mu);
    EXPECT_FALSE(error);
    EXPECT_TRUE(answer->created);
    id = answer->id;
  }
  ASSERT_TRUE(reaches(id, TaskState::succeeded));

  // Bad input is refused at once, by exception, and the callback never runs.
  bool called = false;
  EXPECT_THROW(rt.enqueue_async("no.such.type", boost::json::object(), {},
                                [&](store::Enqueued, const std::exception_ptr&) { called = true; }),
               EnqueueError);
  EXPECT_FALSE(called);
}

// Workers read the registry without locks: a type registered after start()
// would be a data race, so it is refused, as Router refuses a late route.
TEST_F(RuntimeTest, RegisteringATypeAfterStartThrows) {
  auto& rt = make();
  rt.handle_raw("early", [](TaskContext&) {});
  rt.start();
  EXPECT_TRUE(rt.registry().frozen());
  EXPECT_THROW(rt.handle_raw("late", [](TaskContext&) {}), std::logic_error);
  EXPECT_EQ(rt.registry().find("late"), nullptr);
}

TEST_F(RuntimeTest, BadEnqueuesAreRefusedAndNothingIsStored) {
  auto& rt = make();
  rt.handle<Welcome>("email.welcome", [](TaskContext&, const Welcome&) {});
  auto code = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const EnqueueError& e) {
      return std::pair(e.code(), std::string(e.what()));
    }
    return std::pair(EnqueueError::Code::unknown_type, std::string("(no error)"));
  };
  using C = EnqueueError::Code;
  EXPECT_EQ(code([&] { (void)rt.enqueue("nope", {}); }).first, C::unknown_type);
  const auto bad = code([&] { (void)rt.enqueue("email.welcome", {{"email", 5}, {"tries", 1}}); });
  EXPECT_EQ(bad.first, C::invalid_payload);
  EXPECT_NE(bad.second.find("'email'"), std::string::npos) << bad.second;
  const auto big = boost::json::value{{"email", std::string(2 * 1024 * 1024, 'x')}, {"tries", 0}};
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", big); }).first, C::payload_too_large);
  const boost::json::value ok{{"email", "a"}, {"tries", 0}};
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", ok, {.delay = -1s}); }).first,
            C::invalid_option);
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", ok, {.max_attempts = 1'000'000}); }).first,
            C::invalid_option);
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", ok, {.max_attempts = 0}); }).first,
            C::invalid_option);
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", ok, {.queue = "a b"}); }).first,
            C::invalid_option);
  EXPECT_EQ(code([&] { (void)rt.enqueue("email.welcome", ok, {.delay = 1s, .run_at = t0}); }).first,
            C::invalid_option);
  // A batch with one bad task stores none.
  EXPECT_THROW(rt.enqueue_batch({{"email.welcome", ok, {}}, {"nope", ok, {}}}), EnqueueError);
  EXPECT_TRUE(store->queues().empty());
}

TEST_F(RuntimeTest, ExceptionsAreRetriedWithBackoffThenDead) {
  auto& rt = make();
  std::atomic<int> calls{0};
  rt.handle_raw("flaky", [&](TaskContext&) -> Outcome {
    ++calls;
    throw std::runtime_error("downstream said no");
  });
  rt.start();
  const auto id = rt.enqueue("flaky", {}, {.max_attempts = 3}).id;
  const RetryPolicy policy{1s, 10s};
  ASSERT_TRUE(reaches(id, TaskState::retrying));
  const auto r = get(id);
  EXPECT_EQ(r.last_error, "downstream said no");
  EXPECT_LE(r.run_at - clock->now(), policy.ceiling(r.attempt));  // the full-jitter window
  clock->advance(policy.ceiling(1));
  // The second failure must be recorded (its backoff counted from this
  // clock) before the clock moves past that backoff.
  ASSERT_TRUE(test::eventually([&] {
    const auto t = get(id);
    return t.state == TaskState::retrying && t.attempt == 2;
  }));
  clock->advance(policy.ceiling(2));
  ASSERT_TRUE(reaches(id, TaskState::dead));
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(get(id).attempt, 3);
}

TEST_F(RuntimeTest, SnoozeWaitsWithoutUsingAnAttempt) {
  auto& rt = make();
  std::atomic<int> calls{0};
  rt.handle_raw("patient", [&](TaskContext&) -> Outcome {
    if (++calls < 4) return Outcome::snooze(1min, "downstream circuit open");
    return Outcome::done();
  });
  rt.start();
  const auto id = rt.enqueue("patient", {}, {.max_attempts = 1}).id;  // one attempt, 3 snoozes
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(test::eventually([&] { return calls.load() == i; }));
    ASSERT_TRUE(reaches(id, TaskState::scheduled));
    const auto r = get(id);
    EXPECT_EQ(r.attempt, 0);
    EXPECT_EQ(r.run_at, clock->now() + 1min);
    EXPECT_FALSE(r.last_error.has_value());  // a snooze is not an error
    clock->advance(1min);
  }
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(get(id).attempt, 1);
}

TEST_F(RuntimeTest, BackoffStaysWithinItsWindow) {
  const RetryPolicy p{.base = 100ms, .cap = 5s};
  EXPECT_EQ(p.ceiling(1), 100ms);
  EXPECT_EQ(p.ceiling(3), 400ms);
  EXPECT_EQ(p.ceiling(50), 5s);
  EXPECT_EQ(p.ceiling(1'000'000), 5s);  // no overflow
  EXPECT_EQ(p.delay(3, 0.0), 0ms);
  EXPECT_EQ(p.delay(3, 0.5), 200ms);
  for (int i = 0; i < 1000; ++i) {
    const auto d = p.delay(4);
    ASSERT_GE(d, 0ms);
    ASSERT_LE(d, 800ms);
  }
}

TEST_F(RuntimeTest, PermanentFailuresSkipRetries) {
  auto& rt = make();
  rt.handle_raw("bad", [](TaskContext&) -> Outcome { throw PermanentFailure("no such user"); });
  rt.handle_raw("worse", [](TaskContext&) { return Outcome::fail_permanently("invalid address"); });
  rt.start();
  const auto a = rt.enqueue("bad", {}).id;
  const auto b = rt.enqueue("worse", {}).id;
  ASSERT_TRUE(reaches(a, TaskState::dead));
  ASSERT_TRUE(reaches(b, TaskState::dead));
  EXPECT_EQ(get(a).attempt, 1);
  EXPECT_EQ(get(a).last_error, "no such user");
  EXPECT_EQ(get(b).last_error, "invalid address");
}

TEST_F(RuntimeTest, CancelPendingAndRunning) {
  auto& rt = make();
  std::atomic<int> started{0};
  std::atomic<StopReason> reason{StopReason::none};
  rt.handle_raw("long", [&](TaskContext& t) {
    ++started;
    while (t.sleep_for(1h)) {
    }
    reason = t.stop_reason();
    return Outcome::cancelled();
  });
  rt.pause("default");
  const auto waiting = rt.enqueue("long", {}).id;
  EXPECT_EQ(rt.cancel(waiting), store::CancelResult::cancelled);
  EXPECT_EQ(get(waiting).state, TaskState::cancelled);

  rt.resume("default");
  rt.start();
  const auto running = rt.enqueue("long", {}).id;
  ASSERT_TRUE(test::eventually([&] { return started == 1; }));
  EXPECT_EQ(rt.cancel(running), store::CancelResult::requested);
  ASSERT_TRUE(reaches(running, TaskState::cancelled));
  EXPECT_EQ(reason.load(), StopReason::cancelled);
  EXPECT_EQ(rt.cancel(running), store::CancelResult::final);
  EXPECT_EQ(started.load(), 1);  // the cancelled pending task never ran
}

TEST_F(RuntimeTest, CancelFromAnotherProcessArrivesWithTheHeartbeat) {
  auto& rt = make();
  rt.handle_raw("long", [&](TaskContext& t) {
    while (t.sleep_for(1h)) {
    }
    return Outcome::cancelled();
  });
  rt.start();
  const auto id = rt.enqueue("long", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::active));
  EXPECT_EQ(store->cancel(id, clock->now()), store::CancelResult::requested);  // not via rt
  clock->advance(11s);                                                         // past lease / 3
  ASSERT_TRUE(reaches(id, TaskState::cancelled));
}

TEST_F(RuntimeTest, AWorkerThatLostItsLeaseRecordsNothing) {
  auto cfg = config();
  cfg.queues = {{"default", 1, 1}};  // its one worker is busy: it cannot claim the task back
  auto& rt = make(cfg);
  std::atomic<StopReason> reason{StopReason::none};
  std::atomic<int> started{0};
  rt.handle_raw("long", [&](TaskContext& t) {
    ++started;
    while (t.sleep_for(1h)) {
    }
    reason = t.stop_reason();
    return Outcome::done("too late");
  });
  rt.start();
  const auto id = rt.enqueue("long", {}).id;
  ASSERT_TRUE(test::eventually([&] { return started == 1; }));
  // Another process, its clock far ahead, decides our lease expired and takes the task.
  const auto later = clock->now() + 1h;
  ASSERT_EQ(store->reclaim_expired(later), 1U);
  ASSERT_EQ(store->claim("default", 1, {"other", later + 30s}, later).size(), 1U);
  clock->advance(11s);  // our next heartbeat learns the lease is gone
  ASSERT_TRUE(test::eventually([&] { return reason.load() == StopReason::lease_lost; }));
  ASSERT_TRUE(test::eventually([&] { return rt.busy("default") == 0; }));
  EXPECT_TRUE(store->complete(id, "other", "\"mine\"", later));  // the new owner decides
  EXPECT_EQ(get(id).result, "\"mine\"");
  // Reported by the runtime's reporter thread once the store has answered.
  EXPECT_TRUE(test::eventually([&] { return logged("no longer leased"); }));
}

TEST_F(RuntimeTest, GroupWithABadMemberStoresNothing) {
  auto& rt = make();
  rt.handle<Welcome>("email.welcome", [](TaskContext&, const Welcome&) {});
  EXPECT_THROW(rt.enqueue_group({{"email.welcome", {{"email", "a"}, {"tries", 0}}, {}},
                                 {"email.welcome", {{"email", 1}, {"tries", 0}}, {}}}),
               EnqueueError);
  EXPECT_THROW(rt.enqueue_group({{"email.welcome", {{"email", "a"}, {"tries", 0}}, {}}},
                                TaskSpec{"nope", {}, {}}),
               EnqueueError);
  EXPECT_TRUE(store->queues().empty());
}

TEST_F(RuntimeTest, DeadlineStopsTheHandlerAndCountsAsAFailedAttempt) {
  auto& rt = make();
  std::atomic<int> calls{0};
  rt.handle_raw("slow",
                [&](TaskContext& t) {
                  // Before the count the test waits on: it then moves the clock.
                  EXPECT_EQ(t.deadline(), clock->now() + 2s);
                  ++calls;
                  while (t.sleep_for(1h)) {
                  }
                  EXPECT_EQ(t.stop_reason(), StopReason::timeout);
                  return Outcome::cancelled();  // a timeout still counts as a failure
                },
                {.timeout = 2s});
  rt.start();
  const auto id = rt.enqueue("slow", {}, {.max_attempts = 2}).id;
  ASSERT_TRUE(test::eventually([&] { return calls == 1; }));
  clock->advance(2s);
  ASSERT_TRUE(reaches(id, TaskState::retrying));
  EXPECT_EQ(get(id).last_error, "timed out after 2000 ms");
}

TEST_F(RuntimeTest, AHandlerIgnoringItsStopTokenIsReportedStuck) {
  auto cfg = config();
  std::atomic<int> stuck{0};
  cfg.hooks.stuck = [&](const AttemptInfo&) { ++stuck; };
  auto& rt = make(cfg);
  test::Gate gate;
  rt.handle_raw("stubborn", [&](TaskContext&) { gate.wait(); }, {.timeout = 1s});
  rt.start();
  const auto id = rt.enqueue("stubborn", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::active));
  ASSERT_TRUE(test::eventually([&] { return rt.busy("default") == 1; }));
  clock->advance(2500ms);  // deadline + stuck_after
  ASSERT_TRUE(test::eventually([&] { return stuck == 1; }));
  EXPECT_TRUE(logged("ignores its stop token"));
  EXPECT_EQ(rt.busy("default"), 1U);  // its worker is not reused
  gate.open();
  ASSERT_TRUE(reaches(id, TaskState::succeeded));  // it returned done after all
}

// At shutdown, such a handler is waited for the grace, then shutdown_abandon;
// its thread can be neither joined nor left running, so the process exits
// with status 70, naming the task (a death test: it runs in a child process).
TEST(RuntimeDeathTest, AHandlerIgnoringItsStopTokenAtShutdownEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto stop_with_a_stuck_handler = [] {
    RuntimeConfig cfg;
    cfg.queues = {{"default", 1, 1}};
    cfg.poll_interval = 5ms;
    cfg.shutdown_grace = 50ms;
    cfg.shutdown_abandon = 100ms;
    cfg.logger = observe::Logger::to_stderr();
    Runtime rt(std::make_shared<store::MemoryStore>(), cfg);
    std::atomic<bool> started{false};
    std::atomic<bool> never{false};
    rt.handle_raw("stubborn", [&](TaskContext&) {
      started = true;
      while (!never) std::this_thread::sleep_for(10ms);  // no stop token
    });
    rt.start();
    (void)rt.enqueue("stubborn", {});
    while (!started) std::this_thread::sleep_for(1ms);
    rt.stop();
  };
  EXPECT_EXIT(stop_with_a_stuck_handler(), ::testing::ExitedWithCode(kStuckExitCode),
              "ignores its stop token.*stubborn.*task runtime cannot stop");
}

TEST_F(RuntimeTest, ShutdownRequeuesWhatDidNotFinishWithoutUsingAnAttempt) {
  auto cfg = config();
  cfg.shutdown_grace = 50ms;
  auto& rt = make(cfg);
  std::atomic<int> started{0};
  rt.handle_raw("long", [&](TaskContext& t) {
    ++started;
    while (t.sleep_for(1h)) {
    }
    EXPECT_EQ(t.stop_reason(), StopReason::shutdown);
    return Outcome::cancelled();
  });
  rt.start();
  const auto a = rt.enqueue("long", {}).id;
  const auto b = rt.enqueue("long", {}).id;
  ASSERT_TRUE(test::eventually([&] { return started == 2; }));
  rt.stop();
  for (const auto& id : {a, b}) {
    const auto r = get(id);
    EXPECT_EQ(r.state, TaskState::pending);
    EXPECT_EQ(r.attempt, 0);
    EXPECT_TRUE(r.lease_owner.empty());
  }
}

TEST_F(RuntimeTest, PrefetchClaimsAheadWithinItsBoundAndReturnsTasksOnShutdown) {
  auto cfg = config();
  cfg.queues = {{.name = "default", .concurrency = 1, .prefetch = 2}};
  cfg.shutdown_grace = 50ms;
  auto& rt = make(cfg);
  std::atomic<int> started{0};
  rt.handle_raw("long", [&](TaskContext& t) {
    ++started;
    while (t.sleep_for(1h)) {
    }
    return Outcome::cancelled();
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(rt.enqueue("long", {}).id);
  rt.start();
  const auto counts = [&] { return store->queues().at(0); };
  // One running and two claimed ahead: never more than workers + prefetch.
  ASSERT_TRUE(test::eventually([&] { return started == 1 && counts().active == 3; }));
  EXPECT_EQ(counts().pending, 2U);
  rt.stop();
  const auto after = counts();
  EXPECT_EQ(after.pending, 5U);  // the running one and the prefetched ones all came back
  for (const auto& id : ids) EXPECT_EQ(get(id).attempt, 0);
}

TEST_F(RuntimeTest, ShutdownLetsRunningTasksFinishWithinTheGrace) {
  auto& rt = make();
  test::Gate gate;
  std::atomic<int> started{0};
  rt.handle_raw("short", [&](TaskContext&) {
    ++started;
    gate.wait();
    return Outcome::done("finished");
  });
  rt.start();
  const auto id = rt.enqueue("short", {}).id;
  ASSERT_TRUE(test::eventually([&] { return started == 1; }));
  std::jthread stopper([&] { rt.stop(); });
  // The handler finishes while stop() waits out the grace, not before it began.
  ASSERT_TRUE(test::eventually([&] { return rt.stopping(); }));
  gate.open();
  stopper.join();
  EXPECT_EQ(get(id).state, TaskState::succeeded);
}

TEST_F(RuntimeTest, ExpiredLeaseOfADeadWorkerIsReclaimedAndRun) {
  // Another process claimed the task and died holding it.
  auto& rt = make();
  std::atomic<int> calls{0};
  rt.handle_raw("job", [&](TaskContext& t) {
    ++calls;
    return Outcome::done(t.attempt());
  });
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_EQ(store->claim("default", 1, {"dead-process", t0 + 30s}, t0).size(), 1U);
  rt.start();
  clock->advance(31s);
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(get(id).result, "2");  // the dead worker's attempt counted
  EXPECT_TRUE(logged("reclaimed"));
}

TEST_F(RuntimeTest, GroupCompletionSeesEveryResultAndError) {
  auto& rt = make();
  rt.handle_raw("part", [](TaskContext& t) {
    const auto n = t.payload().at("n").as_int64();
    if (n == 2) return Outcome::fail_permanently("part 2 broke");
    return Outcome::done(n * 10);
  });
  std::atomic<int> completions{0};
  boost::json::value summary;
  std::mutex mu;
  rt.handle_raw("summary", [&](TaskContext& t) {
    const std::lock_guard lock(mu);
    summary = t.payload();
    ++completions;
  });
  rt.start();
  const auto g = rt.enqueue_group(
      {{"part", {{"n", 1}}, {}}, {"part", {{"n", 2}}, {}}, {"part", {{"n", 3}}, {}}},
      TaskSpec{"summary", {{"report", "daily"}}, {}});
  ASSERT_EQ(g.members.size(), 3U);
  ASSERT_TRUE(reaches(g.completion_id, TaskState::succeeded));
  EXPECT_EQ(completions.load(), 1);
  const std::lock_guard lock(mu);
  EXPECT_EQ(summary.at("payload").at("report").as_string(), "daily");
  const auto& members = summary.at("members").as_array();
  ASSERT_EQ(members.size(), 3U);
  int ok = 0;
  int dead = 0;
  for (const auto& m : members) {
    if (m.at("state").as_string() == "succeeded") ++ok;
    if (m.at("state").as_string() == "dead") {
      ++dead;
      EXPECT_EQ(m.at("error").as_string(), "part 2 broke");
    }
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(dead, 1);
}

TEST_F(RuntimeTest, PeriodicScheduleFiresOncePerTickAcrossProcesses) {
  std::atomic<int> runs{0};
  auto setup = [&](Runtime& r) {
    r.handle_raw("tick", [&](TaskContext&) { ++runs; });
    r.every("sync", 5s, {"tick", {}, {}});
  };
  auto& a = make();
  setup(a);
  auto cfg = config();
  cfg.owner = "other-process";
  Runtime b(store, cfg);
  setup(b);
  a.start();
  b.start();
  for (int tick = 1; tick <= 3; ++tick) {
    clock->advance(5s);
    ASSERT_TRUE(test::eventually([&] { return runs == tick; })) << tick;
  }
  clock->advance(1s);  // not a new tick
  auto done = [&] {
    std::size_t n = 0;
    for (const auto& q : store->queues()) n += q.succeeded;
    return n;
  };
  ASSERT_TRUE(test::eventually([&] { return done() == 3; }));
  b.stop();
  EXPECT_EQ(runs.load(), 3);
}

TEST_F(RuntimeTest, CronScheduleFiresOnItsMinutes) {
  auto& rt = make();
  std::atomic<int> runs{0};
  rt.handle_raw("report", [&](TaskContext&) { ++runs; });
  rt.cron("report", "*/2 * * * *", {"report", {}, {}});
  EXPECT_THROW(rt.cron("bad", "61 * * * *", {"report", {}, {}}), std::invalid_argument);
  EXPECT_THROW(rt.cron("report", "* * * * *", {"report", {}, {}}), std::invalid_argument);
  EXPECT_THROW(rt.cron("ghost", "* * * * *", {"nope", {}, {}}), EnqueueError);
  rt.start();
  // t0 is 22:13:20 UTC: the ticks are 22:14, 22:16, ...
  clock->advance(40s);
  ASSERT_TRUE(test::eventually([&] { return runs == 1; }));
  clock->advance(1min);  // 22:15: no tick
  clock->advance(1min);  // 22:16
  ASSERT_TRUE(test::eventually([&] { return runs == 2; }));
  auto succeeded = [&] {
    std::size_t n = 0;
    for (const auto& q : store->queues()) n += q.succeeded;
    return n;
  };
  ASSERT_TRUE(test::eventually([&] { return succeeded() == 2; }));
  EXPECT_EQ(runs.load(), 2);
}

TEST_F(RuntimeTest, AnythingThrownIsAFailedAttemptNeverACrash) {
  auto& rt = make();
  rt.handle_raw("odd",
                [](TaskContext&) -> Outcome { throw 42; });  // NOLINT(hicpp-exception-baseclass)
  rt.start();
  const auto id = rt.enqueue("odd", {}, {.max_attempts = 1}).id;
  ASSERT_TRUE(reaches(id, TaskState::dead));
  EXPECT_EQ(get(id).last_error, "unknown exception");
}

TEST_F(RuntimeTest, RateLimitedTasksWaitTheirTurn) {
  auto cfg = config();
  cfg.queues = {{"default", 4, 1}};
  auto& rt = make(cfg);
  std::atomic<int> runs{0};
  rt.handle_raw("email.send", [&](TaskContext&) { ++runs; },
                {.rate_limit = RateLimit{.per_second = 2, .burst = 1}});
  rt.start();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(rt.enqueue("email.send", {}).id);
  ASSERT_TRUE(test::eventually([&] { return runs == 1; }));
  // The other four were handed back with booked turns at +0.5s, +1s, +1.5s, +2s.
  ASSERT_TRUE(test::eventually([&] {
    std::size_t scheduled = 0;
    for (const auto& q : store->queues()) scheduled += q.scheduled;
    return scheduled == 4;
  }));
  for (int turn = 2; turn <= 5; ++turn) {
    clock->advance(500ms);
    ASSERT_TRUE(test::eventually([&] { return runs == turn; })) << turn;
    EXPECT_EQ(runs.load(), turn);
  }
  for (const auto& id : ids) {
    ASSERT_TRUE(reaches(id, TaskState::succeeded));
    EXPECT_EQ(get(id).attempt, 1);  // waiting did not use attempts
  }
}

TEST_F(RuntimeTest, HooksSeeEveryAttempt) {
  auto cfg = config();
  // One worker, so attempt 2 cannot start before attempt 1's after-hook ran
  // (hooks of different attempts may otherwise interleave).
  cfg.queues = {{"default", 1, 1}};
  std::mutex mu;
  std::vector<std::string> events;
  // Apart from the attempts: the hook runs once the store has answered the
  // enqueue, and a worker may already have claimed the task by then.
  std::vector<std::string> enqueued;
  cfg.hooks.enqueued = [&](std::string_view type, std::string_view) {
    const std::lock_guard lock(mu);
    enqueued.push_back(std::string(type));
  };
  cfg.hooks.before_attempt = [&](const AttemptInfo& i) {
    const std::lock_guard lock(mu);
    events.push_back("before " + std::to_string(i.attempt));
  };
  cfg.hooks.after_attempt = [&](const AttemptInfo& i, AttemptOutcome outcome,
                                std::chrono::nanoseconds) {
    const std::lock_guard lock(mu);
    events.push_back("after " + std::to_string(i.attempt) + " " + std::string(to_string(outcome)));
  };
  auto& rt = make(cfg);
  rt.handle_raw("once-flaky", [](TaskContext& t) {
    if (t.attempt() == 1) return Outcome::retry("first try fails", 0ms);
    return Outcome::done();
  });
  rt.start();
  const auto id = rt.enqueue("once-flaky", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  // A success's after-hook follows its commit: it may come just after the
  // state reads succeeded.
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return events.size() >= 4;
  }));
  const std::lock_guard lock(mu);
  EXPECT_EQ(enqueued, std::vector<std::string>{"once-flaky"});
  EXPECT_EQ(events, (std::vector<std::string>{"before 1", "after 1 retrying", "before 2",
                                              "after 2 succeeded"}));
}

TEST_F(RuntimeTest, FinalTasksArePurgedAfterRetention) {
  auto cfg = config();
  cfg.retention = 1h;
  cfg.purge_interval = 1min;
  auto& rt = make(cfg);
  rt.handle_raw("job", [](TaskContext&) {});
  rt.start();
  const auto id = rt.enqueue("job", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  clock->advance(30min);
  const auto kept = rt.enqueue("job", {}, {.delay = 5h}).id;  // not final: never purged
  clock->advance(31min);
  ASSERT_TRUE(test::eventually([&] { return !store->get(id).has_value(); }));
  EXPECT_TRUE(store->get(kept).has_value());
}

// More final tasks than ten purge batches (10,000) are due at once: the purge
// goes on at the next tick rather than waiting out the interval, so a store
// that finishes tasks faster than 10,000 per interval does not grow without
// bound (bench/soak.sh found it did).
TEST_F(RuntimeTest, ThePurgeCatchesUpWithinTheInterval) {
  auto cfg = config();
  cfg.retention = 1h;
  cfg.purge_interval = 24h;  // only the catching up can purge the rest
  auto& rt = make(cfg);
  std::vector<store::NewTask> batch;
  for (int i = 0; i < 25'000; ++i) {
    store::NewTask t;
    t.id = store::new_task_id(t0);
    t.type = "job";
    batch.push_back(std::move(t));
  }
  for (const auto& e : store->enqueue(batch, t0)) {
    ASSERT_EQ(store->cancel(e.id, t0), store::CancelResult::cancelled);
  }
  clock->advance(2h);
  rt.start();  // its first purge is due at once
  ASSERT_TRUE(test::eventually([&] { return store->list({}).tasks.empty(); }))
      << "all 25,000 purged without waiting a day";
}

TEST_F(RuntimeTest, HigherPriorityRunsFirst) {
  auto cfg = config();
  cfg.queues = {{"default", 1, 1}};
  auto& rt = make(cfg);
  std::mutex mu;
  std::vector<int> order;
  rt.handle_raw("job", [&](TaskContext& t) {
    const std::lock_guard lock(mu);
    order.push_back(static_cast<int>(t.payload().at("p").as_int64()));
  });
  rt.pause("default");
  rt.start();
  for (int p : {1, 5, 3}) rt.enqueue("job", {{"p", p}}, {.priority = p});
  rt.resume("default");
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return order.size() == 3;
  }));
  EXPECT_EQ(order, (std::vector<int>{5, 3, 1}));
}

TEST_F(RuntimeTest, UniqueKeyMakesEnqueueIdempotent) {
  auto& rt = make();
  rt.handle_raw("job", [](TaskContext&) {});
  const auto a = rt.enqueue("job", {}, {.unique_key = "invoice-1"});
  const auto b = rt.enqueue("job", {}, {.unique_key = "invoice-1"});
  EXPECT_TRUE(a.created);
  EXPECT_FALSE(b.created);
  EXPECT_EQ(a.id, b.id);
}

TEST_F(RuntimeTest, WorkersPerQueueBoundConcurrency) {
  auto cfg = config();
  cfg.queues = {{"default", 3, 1}, {"mail", 1, 2}};
  auto& rt = make(cfg);
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  test::Gate gate;
  rt.handle_raw("job", [&](TaskContext&) {
    const int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
    gate.wait();
    --now;
  });
  rt.start();
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(rt.enqueue("job", {}).id);
  ASSERT_TRUE(test::eventually([&] { return now == 3; }));
  EXPECT_EQ(rt.busy("default"), 3U);
  std::size_t pending = 0;
  for (const auto& q : store->queues()) pending += q.pending;
  EXPECT_EQ(pending, 7U);  // claimed only as many as there are idle workers
  gate.open();
  for (const auto& id : ids) ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(peak.load(), 3);
}

TEST_F(RuntimeTest, ProgressIsVisibleWhileRunning) {
  auto& rt = make();
  test::Gate gate;
  rt.handle_raw("report", [&](TaskContext& t) {
    t.progress(40, "rendering");
    gate.wait();
  });
  rt.start();
  const auto id = rt.enqueue("report", {}).id;
  ASSERT_TRUE(test::eventually([&] { return get(id).progress == 40; }));
  EXPECT_EQ(get(id).progress_message, "rendering");
  gate.open();
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
}

// A chatty handler: a thousand reports make one write at once and one when
// the interval ends, with the latest value.
TEST_F(RuntimeTest, ProgressIsWrittenAtMostOncePerIntervalAndTheLatestLands) {
  auto faulty = std::make_shared<test::FaultyStore>(store);
  store = faulty;
  auto cfg = config();
  cfg.progress_interval = 1s;
  auto& rt = make(cfg);
  test::Gate gate;
  std::atomic<bool> reported{false};
  rt.handle_raw("chatty", [&](TaskContext& t) {
    for (int i = 1; i <= 1000; ++i) t.progress(i / 10, fmt::format("step {}", i));
    reported = true;
    gate.wait();
  });
  rt.start();
  const auto id = rt.enqueue("chatty", {}).id;
  ASSERT_TRUE(test::eventually([&] { return reported.load(); }));
  EXPECT_EQ(get(id).progress_message, "step 1");  // the first, written at once
  EXPECT_EQ(faulty->calls(test::FaultyStore::Call::set_progress), 1U);
  clock->advance(1s);  // the interval ends: the maintenance tick writes the latest
  ASSERT_TRUE(test::eventually([&] { return get(id).progress_message == "step 1000"; }));
  EXPECT_EQ(get(id).progress, 100);
  EXPECT_EQ(faulty->calls(test::FaultyStore::Call::set_progress), 2U);
  gate.open();
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
}

// A report held back when the handler returns is written before the outcome.
TEST_F(RuntimeTest, TheLastProgressReportIsWrittenWhenTheHandlerReturns) {
  auto cfg = config();
  cfg.progress_interval = 1h;
  auto& rt = make(cfg);
  rt.handle_raw("steps", [&](TaskContext& t) {
    t.progress(50, "half");
    t.progress(100, "done");
  });
  rt.start();
  const auto id = rt.enqueue("steps", {}).id;
  ASSERT_TRUE(reaches(id, TaskState::succeeded));
  EXPECT_EQ(get(id).progress, 100);
  EXPECT_EQ(get(id).progress_message, "done");
}

TEST_F(RuntimeTest, ManyTasksThroughSqlite) {
  test::TempDir dir;
  store = std::make_shared<store::SqliteStore>(
      store::SqliteOptions{.path = (dir.path() / "e.db").string()});
  auto cfg = config();
  cfg.clock = SystemClock::shared();
  cfg.queues = {{"default", 4, 1}, {"other", 2, 1}};
  auto& rt = make(cfg);
  std::atomic<int> runs{0};
  rt.handle_raw("noop", [&](TaskContext&) { ++runs; });
  rt.start();
  std::vector<std::jthread> producers;
  std::vector<std::vector<std::string>> ids(4);
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < 100; ++i) {
        ids[p].push_back(rt.enqueue("noop", {{"i", i}}, {.queue = i % 2 ? "other" : "default"}).id);
      }
    });
  }
  producers.clear();
  ASSERT_TRUE(test::eventually([&] { return runs == 400; }, 60s));
  for (const auto& per : ids) {
    for (const auto& id : per) ASSERT_TRUE(reaches(id, TaskState::succeeded));
  }
  runtime.reset();
  EXPECT_EQ(runs.load(), 400);
}

}  // namespace
}  // namespace errand::tasks
