// The Store contract: every backend must pass every test here, unchanged.
// Each backend instantiates the suite from its own test file (store_contract.hpp).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "errand/store/task_transitions.hpp"
#include "store/store_contract.hpp"

namespace errand::store {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_P(StoreContract, EnqueuedTaskReadsBackWithEveryField) {
  NewTask t = task("email.send", "mail");
  t.priority = 7;
  t.timeout = seconds(9);
  t.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  t.request_id = "req-1";
  const std::string id = t.id;
  const auto e = store->enqueue(t, t0);
  EXPECT_EQ(e.id, id);
  EXPECT_TRUE(e.created);
  EXPECT_EQ(e.state, TaskState::pending);

  const TaskRecord r = get(id);
  EXPECT_EQ(r.type, "email.send");
  EXPECT_EQ(r.queue, "mail");
  EXPECT_EQ(r.payload, R"({"n":1})");
  EXPECT_EQ(r.priority, 7);
  EXPECT_EQ(r.state, TaskState::pending);
  EXPECT_EQ(r.attempt, 0);
  EXPECT_EQ(r.max_attempts, 3);
  EXPECT_EQ(r.timeout, seconds(9));
  EXPECT_EQ(r.traceparent, t.traceparent);
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(r.created_at, t0);
  EXPECT_EQ(r.run_at, t0);
  EXPECT_FALSE(r.finished_at.has_value());
  EXPECT_FALSE(store->get("nope").has_value());
}

TEST_P(StoreContract, DelayedTaskIsScheduledUntilItsTime) {
  NewTask t = task();
  t.run_at = t0 + seconds(10);
  const std::string id = add(t);
  EXPECT_EQ(get(id).state, TaskState::scheduled);
  EXPECT_TRUE(store->claim("default", 10, lease(), t0 + seconds(9)).empty());
  const auto got = store->claim("default", 10, lease(), t0 + seconds(10));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].id, id);
}

// A claim makes due its own queue's scheduled tasks, not every queue's: a
// queue nobody claims from keeps its due tasks `scheduled` (found by the
// store fuzzer once Redis, which keeps due tasks per queue, joined it).
TEST_P(StoreContract, AClaimMakesDueOnlyItsOwnQueue) {
  NewTask mine = task();
  mine.run_at = t0 + seconds(1);
  NewTask theirs = task("t", "other");
  theirs.run_at = t0 + seconds(1);
  const auto mine_id = add(mine);
  const auto theirs_id = add(theirs);
  const auto now = t0 + seconds(2);
  store->set_paused("default", true);  // made due, not claimed
  EXPECT_TRUE(store->claim("default", 10, lease(), now).empty());
  EXPECT_EQ(get(mine_id).state, TaskState::pending);
  EXPECT_EQ(get(mine_id).updated_at, now);
  EXPECT_EQ(get(theirs_id).state, TaskState::scheduled);
  EXPECT_EQ(store->claim("other", 10, lease(), now).size(), 1U);
}

TEST_P(StoreContract, ClaimTakesHighestPriorityThenOldestAndRespectsMax) {
  NewTask low = task();
  NewTask high = task();
  high.priority = 5;
  NewTask later = task();
  later.priority = 5;
  const auto low_id = add(low, t0);
  const auto high_id = add(high, t0 + seconds(1));
  const auto later_id = add(later, t0 + seconds(2));
  add(task("t", "other"), t0);

  const auto now = t0 + seconds(3);
  auto got = store->claim("default", 2, lease("w1", now + seconds(30)), now);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].id, high_id);
  EXPECT_EQ(got[1].id, later_id);
  for (const auto& r : got) {
    EXPECT_EQ(r.state, TaskState::active);
    EXPECT_EQ(r.attempt, 1);
    EXPECT_EQ(r.lease_owner, "w1");
    EXPECT_EQ(r.lease_expires_at, now + seconds(30));
    EXPECT_EQ(r.started_at, now);
    EXPECT_EQ(get(r.id), r);
  }
  got = store->claim("default", 10, lease(), now);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].id, low_id);
  EXPECT_TRUE(store->claim("default", 10, lease(), now).empty());
  EXPECT_EQ(store->claim("other", 10, lease(), now).size(), 1U);
}

TEST_P(StoreContract, BatchIsAtomic) {
  NewTask a = task();
  NewTask b = task();
  NewTask dup = a;
  EXPECT_THROW(store->enqueue({a, b, dup}, t0), StoreError);
  EXPECT_FALSE(store->get(a.id).has_value());
  EXPECT_FALSE(store->get(b.id).has_value());
  const auto done = store->enqueue({a, b}, t0);
  ASSERT_EQ(done.size(), 2U);
  EXPECT_EQ(done[0].id, a.id);
  EXPECT_EQ(done[1].id, b.id);
}

TEST_P(StoreContract, UniqueKeyDeduplicatesWhileUnfinished) {
  NewTask a = task();
  a.unique_key = "order-42";
  NewTask b = task();
  b.unique_key = "order-42";
  const auto first = store->enqueue(a, t0);
  const auto second = store->enqueue(b, t0);
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.id, a.id);
  EXPECT_FALSE(store->get(b.id).has_value());

  const auto claimed = store->claim("default", 1, lease(), t0);
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_FALSE(store->enqueue(b, t0).created);  // active still counts
  ASSERT_TRUE(store->complete(a.id, "w1", "{}", t0));
  const auto third = store->enqueue(b, t0);
  EXPECT_TRUE(third.created);
  EXPECT_EQ(third.id, b.id);
}

// A task keeps its trace context: the traceparent and the tracestate beside
// it, also through a claim and a list.
TEST_P(StoreContract, TraceContextIsKept) {
  NewTask t = task();
  t.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  t.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  const auto id = add(std::move(t));
  EXPECT_EQ(get(id).tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(store->list({}).tasks.at(0).tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  const auto claimed = store->claim("default", 1, lease(), t0);
  ASSERT_EQ(claimed.size(), 1U);
  EXPECT_EQ(claimed[0].traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(claimed[0].tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
}

// The key's holder is the unfinished task that has it; a finished task with
// the same key holds nothing.
TEST_P(StoreContract, HolderOfAUniqueKeyIsItsUnfinishedTask) {
  EXPECT_FALSE(store->holder_of("order-7").has_value());
  NewTask a = task();
  a.unique_key = "order-7";
  add(a);
  add(task());
  auto holder = store->holder_of("order-7");
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->id, a.id);
  EXPECT_EQ(holder->unique_key, "order-7");
  EXPECT_FALSE(store->holder_of("order-8").has_value());

  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  EXPECT_EQ(store->holder_of("order-7")->state, TaskState::active);
  ASSERT_TRUE(store->complete(a.id, "w1", "{}", t0));
  EXPECT_FALSE(store->holder_of("order-7").has_value());
  NewTask b = task();
  b.unique_key = "order-7";
  add(b);
  EXPECT_EQ(store->holder_of("order-7")->id, b.id);
}

TEST_P(StoreContract, CompleteNeedsTheLeaseOwner) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease("w1"), t0).size(), 1U);
  EXPECT_FALSE(store->complete(id, "w2", "{}", t0));
  EXPECT_FALSE(store->complete("missing", "w1", "{}", t0));
  ASSERT_TRUE(store->complete(id, "w1", R"({"ok":true})", t0 + seconds(1)));
  const auto r = get(id);
  EXPECT_EQ(r.state, TaskState::succeeded);
  EXPECT_EQ(r.result, R"({"ok":true})");
  EXPECT_EQ(r.progress, 100);
  EXPECT_EQ(r.finished_at, t0 + seconds(1));
  EXPECT_TRUE(r.lease_owner.empty());
  EXPECT_FALSE(store->complete(id, "w1", "{}", t0));  // only once
}

TEST_P(StoreContract, FailRetriesThenDies) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->fail(id, "w1", "boom", t0 + seconds(5), t0));
  auto r = get(id);
  EXPECT_EQ(r.state, TaskState::retrying);
  EXPECT_EQ(r.last_error, "boom");
  EXPECT_EQ(r.run_at, t0 + seconds(5));
  EXPECT_TRUE(store->claim("default", 1, lease(), t0 + seconds(4)).empty());
  auto again = store->claim("default", 1, lease(), t0 + seconds(5));
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].attempt, 2);
  ASSERT_TRUE(store->fail(id, "w1", "boom twice", std::nullopt, t0 + seconds(6)));
  r = get(id);
  EXPECT_EQ(r.state, TaskState::dead);
  EXPECT_EQ(r.last_error, "boom twice");
  EXPECT_EQ(r.finished_at, t0 + seconds(6));
  // Both failures are in its history, oldest first.
  ASSERT_EQ(r.history.size(), 2U);
  EXPECT_EQ(r.history[0].attempt, 1);
  EXPECT_EQ(r.history[0].outcome, "retrying");
  EXPECT_EQ(r.history[0].error, "boom");
  EXPECT_EQ(r.history[0].started_at, t0);
  EXPECT_EQ(r.history[0].ended_at, t0);
  EXPECT_EQ(r.history[1].attempt, 2);
  EXPECT_EQ(r.history[1].outcome, "dead");
  EXPECT_EQ(r.history[1].error, "boom twice");
  EXPECT_EQ(r.history[1].started_at, t0 + seconds(5));
  EXPECT_EQ(r.history[1].ended_at, t0 + seconds(6));
}

// A lost lease and a cancel while running are attempts too; the history
// keeps the latest kMaxPastAttempts; a success adds nothing (the record
// itself tells how the last attempt went).
TEST_P(StoreContract, HistoryKeepsEveryAttemptThatDidNotSucceed) {
  NewTask t = task();
  t.max_attempts = 100;
  const auto id = add(std::move(t));
  auto now = t0;
  ASSERT_EQ(store->claim("default", 1, lease("w1", now + seconds(30)), now).size(), 1U);
  now += seconds(31);
  ASSERT_EQ(store->reclaim_expired(now), 1U);
  auto r = get(id);
  ASSERT_EQ(r.history.size(), 1U);
  EXPECT_EQ(r.history[0].outcome, "lost");
  EXPECT_NE(r.history[0].error.find("lease expired"), std::string::npos);
  EXPECT_EQ(r.history[0].ended_at, now);

  for (int i = 0; i < 25; ++i) {
    ASSERT_EQ(store->claim("default", 1, lease("w1", now + seconds(30)), now).size(), 1U) << i;
    ASSERT_TRUE(store->fail(id, "w1", "failure " + std::to_string(i), now, now));
  }
  r = get(id);
  ASSERT_EQ(r.history.size(), kMaxPastAttempts);
  EXPECT_EQ(r.history.back().error, "failure 24");
  EXPECT_EQ(r.history.back().attempt, 26);
  EXPECT_EQ(r.history.front().error, "failure 5");  // the lost one and 0..4 dropped

  ASSERT_EQ(store->claim("default", 1, lease("w1", now + seconds(30)), now).size(), 1U);
  ASSERT_EQ(store->cancel(id, now), CancelResult::requested);
  ASSERT_TRUE(store->finish_cancelled(id, "w1", now));
  r = get(id);
  EXPECT_EQ(r.history.back().outcome, "cancelled");
  EXPECT_EQ(r.history.back().attempt, 27);

  const auto ok = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), now).size(), 1U);
  ASSERT_TRUE(store->complete(ok, "w1", "{}", now));
  EXPECT_TRUE(get(ok).history.empty());
}

// An error cut inside a UTF-8 sequence (a webhook's answer, truncated) and a
// long one: the history keeps both, the long one cut to kMaxPastError.
TEST_P(StoreContract, HistorySurvivesOddErrors) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->fail(id, "w1", "bad gateway: caf\xc3", t0, t0));
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->fail(id, "w1", std::string(5000, 'x'), t0, t0));
  const auto r = get(id);
  ASSERT_EQ(r.history.size(), 2U);
  EXPECT_EQ(r.history[0].error, "bad gateway: caf\xc3");
  EXPECT_EQ(r.history[1].error, std::string(kMaxPastError, 'x'));
  EXPECT_EQ(r.last_error, std::string(5000, 'x'));  // the record's own is whole
}

TEST_P(StoreContract, ReleaseReturnsTaskWithoutCountingTheAttempt) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->release(id, "w1", t0, t0));
  auto r = get(id);
  EXPECT_EQ(r.state, TaskState::pending);
  EXPECT_EQ(r.attempt, 0);
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->release(id, "w1", t0 + seconds(2), t0));
  r = get(id);
  EXPECT_EQ(r.state, TaskState::scheduled);
  EXPECT_EQ(r.run_at, t0 + seconds(2));
  EXPECT_FALSE(store->release(id, "w1", t0, t0));  // not active any more
}

TEST_P(StoreContract, CancelPendingActiveAndFinal) {
  const auto pending = add(task());
  const auto active = add(task("t", "q2"));
  EXPECT_EQ(store->cancel(pending, t0), CancelResult::cancelled);
  EXPECT_EQ(get(pending).state, TaskState::cancelled);
  EXPECT_EQ(store->cancel(pending, t0), CancelResult::final);
  EXPECT_EQ(store->cancel("nope", t0), CancelResult::not_found);

  ASSERT_EQ(store->claim("q2", 1, lease(), t0).size(), 1U);
  EXPECT_EQ(store->cancel(active, t0), CancelResult::requested);
  EXPECT_EQ(get(active).state, TaskState::active);
  const auto hb = store->extend_leases({active, "gone"}, lease("w1", t0 + seconds(60)), t0);
  EXPECT_EQ(hb.cancel_requested, std::vector<std::string>{active});
  EXPECT_EQ(hb.lost, std::vector<std::string>{"gone"});
  EXPECT_EQ(get(active).lease_expires_at, t0 + seconds(60));
  ASSERT_TRUE(store->finish_cancelled(active, "w1", t0));
  EXPECT_EQ(get(active).state, TaskState::cancelled);
}

TEST_P(StoreContract, FailAfterCancelRequestEndsCancelledNotRetried) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  EXPECT_EQ(store->cancel(id, t0), CancelResult::requested);
  ASSERT_TRUE(store->fail(id, "w1", "stopped", t0 + seconds(1), t0));
  EXPECT_EQ(get(id).state, TaskState::cancelled);
}

TEST_P(StoreContract, ReleaseAfterACancelRequestEndsCancelled) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  EXPECT_EQ(store->cancel(id, t0), CancelResult::requested);
  const auto run_at = get(id).run_at;
  // E.g. shutdown before the heartbeat, asking for a later run.
  ASSERT_TRUE(store->release(id, "w1", t0 + seconds(5), t0 + seconds(1)));
  EXPECT_EQ(get(id).state, TaskState::cancelled);
  // It will not run again: its run_at stays what it was (found by
  // fuzz/store_ops_fuzz: SQLite moved it).
  EXPECT_EQ(get(id).run_at, run_at);
  EXPECT_TRUE(store->claim("default", 1, lease(), t0).empty());
}

TEST_P(StoreContract, HeartbeatOfAnotherOwnerIsLost) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, lease("w1"), t0).size(), 1U);
  const auto hb = store->extend_leases({id}, lease("w2", t0 + seconds(99)), t0);
  EXPECT_EQ(hb.lost, std::vector<std::string>{id});
  EXPECT_EQ(get(id).lease_expires_at, t0 + seconds(30));
}

TEST_P(StoreContract, ExpiredLeasesAreReclaimed) {
  NewTask last = task();
  last.max_attempts = 1;
  const auto again = add(task());
  const auto dies = add(last);
  ASSERT_EQ(store->claim("default", 2, lease("w1", t0 + seconds(10)), t0).size(), 2U);
  EXPECT_EQ(store->reclaim_expired(t0 + seconds(10)), 0U);  // not yet past
  EXPECT_EQ(store->reclaim_expired(t0 + seconds(11)), 2U);
  EXPECT_EQ(get(again).state, TaskState::pending);
  EXPECT_EQ(get(again).attempt, 1);
  EXPECT_TRUE(get(again).lease_owner.empty());
  EXPECT_EQ(get(dies).state, TaskState::dead);
  EXPECT_TRUE(get(dies).last_error.has_value());
  EXPECT_FALSE(store->complete(again, "w1", "{}", t0 + seconds(12)));  // the lease is gone
}

TEST_P(StoreContract, PurgeRemovesOldFinalTasksOnly) {
  std::vector<std::string> done;
  for (int i = 0; i < 3; ++i) {
    done.push_back(add(task()));
    ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
    ASSERT_TRUE(store->complete(done.back(), "w1", "{}", t0 + seconds(i)));
  }
  const auto waiting = add(task());
  EXPECT_EQ(store->purge_final(t0 + seconds(2), 1), 1U);  // max per call
  EXPECT_FALSE(store->get(done[0]).has_value());
  EXPECT_EQ(store->purge_final(t0 + seconds(2), 100), 1U);  // finished before the cutoff only
  EXPECT_FALSE(store->get(done[1]).has_value());
  EXPECT_TRUE(store->get(done[2]).has_value());
  EXPECT_TRUE(store->get(waiting).has_value());
}

TEST_P(StoreContract, PausedQueueYieldsNothingAndCountsShowIt) {
  add(task());
  add(task());
  store->set_paused("default", true);
  EXPECT_TRUE(store->claim("default", 10, lease(), t0).empty());
  auto qs = store->queues();
  ASSERT_EQ(qs.size(), 1U);
  EXPECT_EQ(qs[0].queue, "default");
  EXPECT_TRUE(qs[0].paused);
  EXPECT_EQ(qs[0].pending, 2U);

  store->set_paused("default", false);
  EXPECT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  store->set_paused("empty", true);
  qs = store->queues();
  ASSERT_EQ(qs.size(), 2U);
  EXPECT_FALSE(qs[0].paused);
  EXPECT_EQ(qs[0].pending, 1U);
  EXPECT_EQ(qs[0].active, 1U);
  EXPECT_EQ(qs[1].queue, "empty");
  EXPECT_TRUE(qs[1].paused);
  // Resumed, a queue without tasks is not listed (found by fuzz/store_ops_fuzz:
  // SQLite kept listing it, with every count at zero).
  store->set_paused("empty", false);
  store->set_paused("never-paused", false);
  qs = store->queues();
  ASSERT_EQ(qs.size(), 1U);
  EXPECT_EQ(qs[0].queue, "default");
}

// The answer of enqueue_async, waited for (it may come inline or later).
struct AsyncAnswer {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  std::vector<Enqueued> out;
  std::exception_ptr error;

  Store::EnqueueDone callback() {
    return [this](std::vector<Enqueued> o, std::exception_ptr e) {
      const std::lock_guard lock(mu);
      ++calls;
      out = std::move(o);
      error = std::move(e);  // the store keeps no reference once we are told
      cv.notify_all();
    };
  }
  bool wait() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return calls > 0; });
  }
};

TEST_P(StoreContract, EnqueueAsyncAnswersOnceWithWhatEnqueueWouldAnswer) {
  AsyncAnswer a;
  NewTask t = task();
  t.unique_key = "k";
  const auto id = t.id;
  store->enqueue_async({t, task("u")}, t0, a.callback());
  ASSERT_TRUE(a.wait());
  ASSERT_FALSE(a.error);
  ASSERT_EQ(a.out.size(), 2U);
  EXPECT_EQ(a.out[0].id, id);
  EXPECT_TRUE(a.out[0].created);
  EXPECT_EQ(get(id).type, "t");  // durable by the time of the answer
  EXPECT_EQ(get(a.out[1].id).type, "u");

  AsyncAnswer dup;  // the same unique key: the first task's id, not created
  NewTask again = task();
  again.unique_key = "k";
  store->enqueue_async({again}, t0, dup.callback());
  ASSERT_TRUE(dup.wait());
  ASSERT_EQ(dup.out.size(), 1U);
  EXPECT_EQ(dup.out[0].id, id);
  EXPECT_FALSE(dup.out[0].created);

  AsyncAnswer refused;  // an error arrives through the callback, nothing stored
  NewTask limited = task("v");
  limited.max_waiting = 1;
  store->enqueue_async({limited}, t0, refused.callback());
  ASSERT_TRUE(refused.wait());
  ASSERT_TRUE(refused.error);
  EXPECT_TRUE(refused.out.empty());
  try {
    std::rethrow_exception(refused.error);
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::queue_full);
  }
  EXPECT_FALSE(store->get(limited.id).has_value());
  const std::lock_guard lock(refused.mu);
  EXPECT_EQ(refused.calls, 1);
}

TEST_P(StoreContract, MaxWaitingRefusesAtTheLimitAndStoresNothing) {
  const auto limited = [&](std::string queue = "default") {
    NewTask t = task("t", std::move(queue));
    t.max_waiting = 3;
    return t;
  };
  add(limited());
  NewTask later = limited();
  later.run_at = t0 + seconds(60);  // scheduled tasks wait too
  add(later);
  add(limited());  // the third: exactly at the limit
  try {
    add(limited());
    FAIL() << "a fourth waiting task was accepted";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::queue_full);
    EXPECT_NE(std::string(e.what()).find("'default'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store->queues().at(0).pending + store->queues().at(0).scheduled, 3U);

  // Other queues and unlimited tasks are not affected.
  add(limited("other"));
  add(task());

  // A batch that would cross the limit is refused whole.
  std::vector<NewTask> batch{limited("other"), limited("other"), limited("other")};
  const std::string first = batch[0].id;
  EXPECT_THROW(store->enqueue(batch, t0), StoreError);
  EXPECT_FALSE(store->get(first).has_value());

  // Deduplication is not an insert: allowed even when full.
  NewTask keyed = limited("keyed");
  keyed.unique_key = "k";
  add(keyed);
  add(limited("keyed"));
  add(limited("keyed"));
  NewTask again = limited("keyed");
  again.unique_key = "k";
  EXPECT_FALSE(store->enqueue(again, t0).created);

  // Claiming makes room: active tasks are not waiting.
  ASSERT_EQ(store->claim("keyed", 1, lease(), t0).size(), 1U);
  add(limited("keyed"));
}

TEST_P(StoreContract, PurgeAndSchedulesAndGroupsKeepCountsAndLimitsRight) {
  const auto id = add(task("t", "p"));
  ASSERT_EQ(store->claim("p", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->complete(id, "w1", "null", t0));
  EXPECT_EQ(store->purge_final(t0 + seconds(1), 10), 1U);
  EXPECT_TRUE(store->queues().empty());  // purged: not counted any more

  NewTask full = task("t", "s");
  full.max_waiting = 1;
  add(full);
  NewTask tick = task("tick", "s");
  tick.max_waiting = 1;  // a schedule's firing is never refused
  EXPECT_TRUE(store->fire_schedule("every-1s", t0, tick, t0));
  // Group members carry no unique_key, so none of them is "deduplicated" past the limit.
  NewTask keyed = task("t", "g");
  keyed.unique_key = "k";
  add(keyed);
  std::vector<NewTask> members{task("t", "g"), task("t", "g")};
  for (auto& m : members) {
    m.unique_key = "k";
    m.max_waiting = 2;
  }
  EXPECT_THROW(store->enqueue_group({new_task_id(t0)}, members, t0), StoreError);
}

TEST_P(StoreContract, QueueCountsFollowEveryTransition) {
  const auto counts = [&](std::string_view queue) {
    for (auto& q : store->queues()) {
      if (q.queue == queue) return q;
    }
    return QueueInfo{};
  };
  const auto a = add(task("t", "q"));
  const auto b = add(task("t", "q"));
  NewTask later = task("t", "q");
  later.run_at = t0 + seconds(60);
  const auto c = add(later);
  auto q = counts("q");
  EXPECT_EQ(q.pending, 2U);
  EXPECT_EQ(q.scheduled, 1U);

  ASSERT_EQ(store->claim("q", 2, lease(), t0).size(), 2U);
  EXPECT_EQ(counts("q").active, 2U);
  ASSERT_TRUE(store->complete(a, "w1", "null", t0));
  ASSERT_TRUE(store->fail(b, "w1", "boom", t0 + seconds(5), t0));
  q = counts("q");
  EXPECT_EQ(q.active, 0U);
  EXPECT_EQ(q.succeeded, 1U);
  EXPECT_EQ(q.retrying, 1U);
  EXPECT_EQ(store->cancel(c, t0), CancelResult::cancelled);
  EXPECT_TRUE(store->remove(c));
  EXPECT_TRUE(store->remove(a));
  q = counts("q");
  EXPECT_EQ(q.scheduled + q.cancelled + q.succeeded, 0U);
  EXPECT_EQ(q.retrying, 1U);
  EXPECT_EQ(store->cancel(b, t0), CancelResult::cancelled);
  EXPECT_TRUE(store->remove(b));
  EXPECT_EQ(counts("q").queue, "");  // no tasks, not paused: not listed
}

TEST_P(StoreContract, ListPagesNewestFirstWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(add(task(i % 2 == 0 ? "even" : "odd")));
  add(task("even", "elsewhere"));

  ListQuery q{.queue = "default", .limit = 2};
  Page p1 = store->list(q);
  ASSERT_EQ(p1.tasks.size(), 2U);
  EXPECT_EQ(p1.tasks[0].id, ids[4]);
  EXPECT_EQ(p1.tasks[1].id, ids[3]);
  ASSERT_FALSE(p1.next_cursor.empty());
  q.cursor = p1.next_cursor;
  Page p2 = store->list(q);
  ASSERT_EQ(p2.tasks.size(), 2U);
  EXPECT_EQ(p2.tasks[0].id, ids[2]);
  q.cursor = p2.next_cursor;
  Page p3 = store->list(q);
  ASSERT_EQ(p3.tasks.size(), 1U);
  EXPECT_EQ(p3.tasks[0].id, ids[0]);
  EXPECT_TRUE(p3.next_cursor.empty());

  Page even = store->list({.queue = "default", .type = "even", .limit = 10});
  EXPECT_EQ(even.tasks.size(), 3U);
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  EXPECT_EQ(store->list({.state = TaskState::active, .limit = 10}).tasks.size(), 1U);
  EXPECT_EQ(store->list({.limit = 100}).tasks.size(), 6U);
}

// A rare type behind more than a page's scan budget of other tasks: the
// first page comes back empty but with a cursor, and following it finds the
// task — each request examines a bounded number of tasks.
TEST_P(StoreContract, AListBehindManyOtherTasksIsBoundedAndGoesOn) {
  const auto rare = add(task("rare"));
  for (std::size_t n = 0; n < kListScanBudget + 50;) {
    std::vector<NewTask> batch;
    for (int i = 0; i < 1000 && n < kListScanBudget + 50; ++i, ++n) batch.push_back(task("common"));
    store->enqueue(std::move(batch), t0);
  }
  ListQuery q{.type = "rare", .limit = 10};
  const Page first = store->list(q);
  EXPECT_TRUE(first.tasks.empty());
  ASSERT_FALSE(first.next_cursor.empty());
  q.cursor = first.next_cursor;
  const Page second = store->list(q);
  ASSERT_EQ(second.tasks.size(), 1U);
  EXPECT_EQ(second.tasks[0].id, rare);
  EXPECT_TRUE(second.next_cursor.empty());
  // A full page needs no budget's worth of examining: the common type at once.
  EXPECT_EQ(store->list({.type = "common", .limit = 10}).tasks.size(), 10U);
}

TEST_P(StoreContract, ListFindsEveryStateWithAndWithoutAQueue) {
  // One task in each state, in two queues, newest first within each state.
  const auto in = [&](const std::string& queue) {
    std::map<TaskState, std::string> ids;
    NewTask later = task("t", queue);
    later.run_at = t0 + seconds(60);
    ids[TaskState::scheduled] = add(later);
    ids[TaskState::pending] = add(task("t", queue));
    for (auto s : {TaskState::active, TaskState::succeeded, TaskState::retrying, TaskState::dead,
                   TaskState::cancelled}) {
      NewTask t = task("t", queue);
      t.max_attempts = s == TaskState::dead ? 1 : 3;
      ids[s] = add(t);
    }
    return ids;
  };
  const auto a = in("qa");
  const auto b = in("qb");
  for (const auto* ids : {&a, &b}) {
    const auto queue = ids == &a ? std::string("qa") : std::string("qb");
    // Claim the five that must leave pending, oldest first, and move each on.
    auto claimed = store->claim(queue, 6, lease(), t0);
    ASSERT_EQ(claimed.size(), 6U);  // the pending one too; it goes back
    ASSERT_TRUE(store->release(ids->at(TaskState::pending), "w1", t0, t0));
    ASSERT_TRUE(store->complete(ids->at(TaskState::succeeded), "w1", "null", t0));
    ASSERT_TRUE(store->fail(ids->at(TaskState::retrying), "w1", "e", t0 + seconds(60), t0));
    ASSERT_TRUE(store->fail(ids->at(TaskState::dead), "w1", "e", std::nullopt, t0));
    (void)store->cancel(ids->at(TaskState::cancelled), t0);
    ASSERT_TRUE(store->finish_cancelled(ids->at(TaskState::cancelled), "w1", t0));
  }
  for (auto s : {TaskState::scheduled, TaskState::pending, TaskState::active, TaskState::succeeded,
                 TaskState::retrying, TaskState::dead, TaskState::cancelled}) {
    const auto all = store->list({.state = s, .limit = 10}).tasks;
    ASSERT_EQ(all.size(), 2U) << to_string(s);
    EXPECT_EQ(all[0].id, b.at(s)) << to_string(s);  // newest first
    EXPECT_EQ(all[1].id, a.at(s)) << to_string(s);
    const auto one = store->list({.queue = "qa", .state = s, .limit = 10}).tasks;
    ASSERT_EQ(one.size(), 1U) << to_string(s);
    EXPECT_EQ(one[0].id, a.at(s)) << to_string(s);
    EXPECT_EQ(one[0].state, s);
  }
}

TEST_P(StoreContract, GroupCompletionRunsOnceAllMembersAreFinal) {
  NewTask done = task("part", "g");
  done.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  NewTask failed = task("part", "g");
  NewTask cancelled = task("part", "g");
  NewTask completion = task("summary", "default");
  completion.payload = R"({"report":7})";
  const auto members = store->enqueue_group({"grp-1", completion}, {done, failed, cancelled}, t0);
  ASSERT_EQ(members.size(), 3U);
  EXPECT_EQ(get(done.id).group_id, "grp-1");

  ASSERT_EQ(store->claim("g", 2, lease(), t0).size(), 2U);
  ASSERT_TRUE(store->complete(done.id, "w1", R"({"sent":1})", t0));
  ASSERT_TRUE(store->fail(failed.id, "w1", "smtp down", std::nullopt, t0));
  EXPECT_FALSE(store->get(completion.id).has_value());
  EXPECT_EQ(store->cancel(cancelled.id, t0), CancelResult::cancelled);

  const auto c = get(completion.id);
  EXPECT_EQ(c.type, "summary");
  EXPECT_EQ(c.state, TaskState::pending);
  const auto payload = boost::json::parse(c.payload).as_object();
  EXPECT_EQ(payload.at("group").as_string(), "grp-1");
  EXPECT_EQ(payload.at("payload").at("report").as_int64(), 7);
  const auto& list = payload.at("members").as_array();
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[0].at("id").as_string(), done.id);
  EXPECT_EQ(list[0].at("state").as_string(), "succeeded");
  EXPECT_EQ(list[0].at("result").at("sent").as_int64(), 1);
  // Each member's producer span, for the completion's links.
  EXPECT_EQ(list[0].at("traceparent").as_string(), done.traceparent);
  EXPECT_EQ(list[1].at("traceparent").as_string(), "");
  EXPECT_EQ(list[1].at("state").as_string(), "dead");
  EXPECT_EQ(list[1].at("error").as_string(), "smtp down");
  EXPECT_EQ(list[2].at("state").as_string(), "cancelled");
}

TEST_P(StoreContract, RetryingADeadMemberReopensItsGroup) {
  NewTask a = task("part", "g");
  NewTask b = task("part", "g");
  NewTask done = task("summary");
  ASSERT_EQ(store->enqueue_group({"grp-r", done}, {a, b}, t0).size(), 2U);
  ASSERT_EQ(store->claim("g", 1, lease(), t0).size(), 1U);  // a
  ASSERT_TRUE(store->fail(a.id, "w1", "broke", std::nullopt, t0));
  ASSERT_TRUE(store->retry(a.id, t0));                      // a is unfinished again
  ASSERT_EQ(store->claim("g", 2, lease(), t0).size(), 2U);  // a and b
  ASSERT_TRUE(store->complete(b.id, "w1", "1", t0));
  EXPECT_FALSE(store->get(done.id).has_value());  // still waiting for a
  ASSERT_TRUE(store->complete(a.id, "w1", "2", t0));
  const auto c = get(done.id);
  const auto members = boost::json::parse(c.payload).at("members").as_array();
  ASSERT_EQ(members.size(), 2U);
  EXPECT_EQ(members[0].at("state").as_string(), "succeeded");
  EXPECT_EQ(members[1].at("state").as_string(), "succeeded");
}

TEST_P(StoreContract, GroupCompletionLeavesOutDeletedMembers) {
  NewTask a = task("part", "g");
  NewTask b = task("part", "g");
  NewTask done = task("summary");
  ASSERT_EQ(store->enqueue_group({"grp-d", done}, {a, b}, t0).size(), 2U);
  ASSERT_EQ(store->claim("g", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->complete(a.id, "w1", "1", t0));
  ASSERT_TRUE(store->remove(a.id));
  ASSERT_EQ(store->claim("g", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->complete(b.id, "w1", "2", t0));
  const auto members = boost::json::parse(get(done.id).payload).at("members").as_array();
  ASSERT_EQ(members.size(), 1U);
  EXPECT_EQ(members[0].at("id").as_string(), b.id);
}

// A group answers for itself while it waits and after: its size, how many
// members remain, its members by state, its completion task's id (which the
// store names as awaited until the task exists), and when it finished. It is
// kept until the retention purge, and a retry after it finished reopens
// nothing (the completion ran).
TEST_P(StoreContract, AGroupIsReadableWhileItWaitsAndAfterUntilThePurge) {
  NewTask a = task("part", "g");
  NewTask b = task("part", "g");
  NewTask done = task("summary");
  EXPECT_FALSE(store->group("grp-q").has_value());
  ASSERT_EQ(store->enqueue_group({"grp-q", done}, {a, b}, t0).size(), 2U);
  auto g = store->group("grp-q");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->id, "grp-q");
  EXPECT_EQ(g->size, 2U);
  EXPECT_EQ(g->remaining, 2U);
  EXPECT_EQ(g->completion_id, done.id);
  EXPECT_FALSE(g->finished_at.has_value());
  EXPECT_EQ(g->members, (std::map<TaskState, std::size_t>{{TaskState::pending, 2}}));
  EXPECT_EQ(store->group_awaiting(done.id), "grp-q");
  EXPECT_FALSE(store->group_awaiting(a.id).has_value());

  ASSERT_EQ(store->claim("g", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->fail(a.id, "w1", "broke", std::nullopt, t0));
  g = store->group("grp-q");
  EXPECT_EQ(g->remaining, 1U);
  EXPECT_EQ(g->members,
            (std::map<TaskState, std::size_t>{{TaskState::pending, 1}, {TaskState::dead, 1}}));

  const auto t1 = t0 + std::chrono::seconds(1);
  ASSERT_EQ(store->claim("g", 1, lease(), t1).size(), 1U);
  ASSERT_TRUE(store->complete(b.id, "w1", "1", t1));
  g = store->group("grp-q");
  ASSERT_TRUE(g.has_value()) << "kept once finished";
  EXPECT_EQ(g->remaining, 0U);
  EXPECT_EQ(g->finished_at, t1);
  EXPECT_EQ(g->members,
            (std::map<TaskState, std::size_t>{{TaskState::succeeded, 1}, {TaskState::dead, 1}}));
  EXPECT_TRUE(store->get(done.id).has_value());
  EXPECT_FALSE(store->group_awaiting(done.id).has_value()) << "the completion exists now";
  // A retry after the completion ran reopens nothing.
  ASSERT_TRUE(store->retry(a.id, t1));
  EXPECT_EQ(store->group("grp-q")->remaining, 0U);
  // A group id stays taken while the group is kept.
  EXPECT_THROW(store->enqueue_group({"grp-q", std::nullopt}, {task("part", "g")}, t1), StoreError);

  // Retention: purged with (after) its final tasks' cutoff, not before.
  store->purge_final(t1, 100);
  EXPECT_TRUE(store->group("grp-q").has_value());
  store->purge_final(t1 + std::chrono::milliseconds(1), 100);
  EXPECT_FALSE(store->group("grp-q").has_value());

  // A group without a completion task, or without members.
  ASSERT_TRUE(store->enqueue_group({"grp-e", std::nullopt}, {}, t1).empty());
  g = store->group("grp-e");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->size, 0U);
  EXPECT_EQ(g->completion_id, "");
  EXPECT_EQ(g->finished_at, t1);
  EXPECT_TRUE(g->members.empty());
}

TEST_P(StoreContract, ScheduleFiresOncePerTick) {
  NewTask a = task("tick");
  NewTask b = task("tick");
  NewTask c = task("tick");
  EXPECT_TRUE(store->fire_schedule("every-5s", t0, a, t0));
  EXPECT_FALSE(store->fire_schedule("every-5s", t0, b, t0));  // another process, same tick
  EXPECT_FALSE(store->get(b.id).has_value());
  EXPECT_TRUE(store->fire_schedule("every-5s", t0 + seconds(5), c, t0));
  EXPECT_FALSE(store->fire_schedule("every-5s", t0 + seconds(1), b, t0));  // older tick
  EXPECT_TRUE(store->fire_schedule("other", t0, b, t0));
  using Ticks = std::vector<std::pair<std::string, TimePoint>>;
  EXPECT_EQ(store->schedule_ticks(), (Ticks{{"every-5s", t0 + seconds(5)}, {"other", t0}}));
}

TEST_P(StoreContract, RetryAndRemove) {
  NewTask t = task();
  t.max_attempts = 1;
  const auto id = add(t);
  EXPECT_FALSE(store->remove(id));  // not final
  EXPECT_FALSE(store->retry(id, t0));
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  ASSERT_TRUE(store->fail(id, "w1", "x", std::nullopt, t0));
  ASSERT_TRUE(store->retry(id, t0 + seconds(1)));
  auto r = get(id);
  EXPECT_EQ(r.state, TaskState::pending);
  EXPECT_EQ(r.attempt, 0);
  EXPECT_FALSE(r.finished_at.has_value());
  EXPECT_EQ(store->cancel(id, t0), CancelResult::cancelled);
  EXPECT_TRUE(store->remove(id));
  EXPECT_FALSE(store->get(id).has_value());
  EXPECT_FALSE(store->remove(id));
}

// The lease owner is the attempt's fencing token; the node is who ran it,
// kept after the attempt ends (the lease owner is cleared).
TEST_P(StoreContract, NodeIsRecordedAtClaimAndKeptAfterwards) {
  const auto id = add(task());
  EXPECT_EQ(get(id).node, "");
  const auto got = store->claim("default", 1, {"n1~a.1", t0 + seconds(30), "n1"}, t0);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].node, "n1");
  EXPECT_EQ(got[0].lease_owner, "n1~a.1");
  EXPECT_FALSE(store->complete(id, "n1", "null", t0));  // the node is not the token
  ASSERT_TRUE(store->complete(id, "n1~a.1", "null", t0));
  const auto r = get(id);
  EXPECT_EQ(r.node, "n1");
  EXPECT_TRUE(r.lease_owner.empty());
  // Without a node the owner stands for it.
  const auto other = add(task());
  ASSERT_EQ(store->claim("default", 1, lease("w9"), t0).size(), 1U);
  EXPECT_EQ(get(other).node, "w9");
}

// A node whose lease expired and was claimed again — by itself, under a new
// token — cannot record the old attempt's outcome.
TEST_P(StoreContract, AStaleAttemptCannotWriteAfterItsTaskWasClaimedAgain) {
  const auto id = add(task());
  ASSERT_EQ(store->claim("default", 1, {"n1~a.1", t0 + seconds(10), "n1"}, t0).size(), 1U);
  EXPECT_EQ(store->reclaim_expired(t0 + seconds(11)), 1U);
  ASSERT_EQ(store->claim("default", 1, {"n1~a.2", t0 + seconds(60), "n1"}, t0 + seconds(12)).size(),
            1U);
  EXPECT_FALSE(store->complete(id, "n1~a.1", "stale", t0 + seconds(13)));
  EXPECT_FALSE(store->fail(id, "n1~a.1", "stale", std::nullopt, t0 + seconds(13)));
  EXPECT_FALSE(store->set_progress(id, "n1~a.1", 50, "stale", t0 + seconds(13)));
  EXPECT_EQ(store->extend_leases({id}, {"n1~a.1", t0 + seconds(99), "n1"}, t0).lost.size(), 1U);
  EXPECT_TRUE(store->complete(id, "n1~a.2", "fresh", t0 + seconds(14)));
  EXPECT_EQ(get(id).result, "fresh");
}

TEST_P(StoreContract, NodesAreListedWhileTheyHeartbeatThenForgotten) {
  NodeInfo api{.id = "api-1", .role = "api", .version = "0.1.0", .started_at = t0, .last_seen = t0};
  NodeInfo worker{.id = "worker-1",
                  .role = "worker",
                  .version = "0.1.0",
                  .started_at = t0,
                  .last_seen = t0,
                  .queues = {{"default", 4, 1}, {"mail", 2, 0}},
                  .schedules = {{"nightly", "cron", "0 3 * * *", "report.build", "reports"},
                                {"tick", "every", "60000", "demo.noop", "default"}},
                  .stats = R"({"v":1,"end":1,"queues":{}})"};
  store->heartbeat_node(worker);
  store->heartbeat_node(api);
  auto ns = store->nodes(t0 + seconds(1), seconds(30));
  ASSERT_EQ(ns.size(), 2U);
  EXPECT_EQ(ns[0], api);  // by id
  EXPECT_EQ(ns[1], worker);
  worker.last_seen = t0 + seconds(20);  // a later heartbeat replaces the info
  worker.queues[0].busy = 3;
  store->heartbeat_node(worker);
  ns = store->nodes(t0 + seconds(40), seconds(30));  // api went silent
  ASSERT_EQ(ns.size(), 1U);
  EXPECT_EQ(ns[0], worker);
  EXPECT_EQ(store->nodes(t0, seconds(30)).size(), 1U);  // forgotten, not just hidden
  store->remove_node("worker-1");
  EXPECT_TRUE(store->nodes(t0 + seconds(40), seconds(30)).empty());
}

TEST_P(StoreContract, ProgressIsRecordedForTheOwner) {
  const auto id = add(task());
  EXPECT_FALSE(store->set_progress(id, "w1", 10, "not active", t0));
  ASSERT_EQ(store->claim("default", 1, lease(), t0).size(), 1U);
  EXPECT_TRUE(store->set_progress(id, "w1", 150, "rendering", t0));
  EXPECT_FALSE(store->set_progress(id, "w2", 20, "intruder", t0));
  const auto r = get(id);
  EXPECT_EQ(r.progress, 100);
  EXPECT_EQ(r.progress_message, "rendering");
}

// Every row of the transition table (task_transitions.hpp) is driven on this
// backend, and every state change observed on the way is one of its rows.
TEST_P(StoreContract, EveryTransitionOfTheTableAndNoOther) {
  std::set<std::size_t> seen;
  TimePoint now = t0;
  auto tick = [&] { return now += seconds(1); };
  auto state_of = [&](const std::string& id) { return get(id).state; };
  auto note = [&](StoreOp op, std::optional<TaskState> from, TaskState to) {
    if (from == to) return;
    EXPECT_TRUE(allowed(op, from, to))
        << to_string(op) << ": " << (from ? to_string(*from) : "new") << " -> " << to_string(to);
    for (std::size_t i = 0; i < kTransitions.size(); ++i) {
      const auto& t = kTransitions[i];
      if (t.op == op && t.from == from && t.to == to) seen.insert(i);
    }
  };
  // An operation on one task: the change it made, noted.
  auto step = [&](StoreOp op, const std::string& id, const std::function<void()>& f) {
    const auto before = state_of(id);
    f();
    note(op, before, state_of(id));
  };
  // A claim of a waiting task promotes it first, then makes it active (the
  // promotion happens inside claim: only the two together can be observed).
  auto claim_one = [&](const std::string& queue, const std::string& id, TimePoint until) {
    const auto before = state_of(id);
    ASSERT_EQ(store->claim(queue, 1, {"w1", until}, tick()).size(), 1U) << queue;
    if (before != TaskState::pending) {
      note(StoreOp::promote, before, TaskState::pending);
      note(StoreOp::claim, TaskState::pending, state_of(id));
    } else {
      note(StoreOp::claim, before, state_of(id));
    }
  };
  auto enqueue = [&](const std::string& queue, TimePoint run_at = {}, int max_attempts = 3) {
    NewTask t = task("t", queue);
    t.run_at = run_at;
    t.max_attempts = max_attempts;
    const auto id = add(std::move(t), tick());
    note(StoreOp::enqueue, std::nullopt, state_of(id));
    return id;
  };
  const auto far = [&] { return now + seconds(3600); };

  // pending → active → succeeded; scheduled → (pending) → active → retrying → … → dead
  const auto a = enqueue("qa");
  claim_one("qa", a, far());
  step(StoreOp::complete, a, [&] { store->complete(a, "w1", "{}", tick()); });
  const auto b = enqueue("qb", now + seconds(5));
  now += seconds(10);
  claim_one("qb", b, far());
  step(StoreOp::fail, b, [&] { store->fail(b, "w1", "x", now + seconds(5), tick()); });
  now += seconds(10);
  claim_one("qb", b, far());
  step(StoreOp::fail, b, [&] { store->fail(b, "w1", "x", std::nullopt, tick()); });
  // dead → pending → cancelled → pending
  step(StoreOp::retry, b, [&] { store->retry(b, tick()); });
  step(StoreOp::cancel, b, [&] { store->cancel(b, tick()); });
  step(StoreOp::retry, b, [&] { store->retry(b, tick()); });
  // scheduled → cancelled; retrying → cancelled
  const auto c = enqueue("qc", far());
  step(StoreOp::cancel, c, [&] { store->cancel(c, tick()); });
  const auto d = enqueue("qd");
  claim_one("qd", d, far());
  step(StoreOp::fail, d, [&] { store->fail(d, "w1", "x", far(), tick()); });
  step(StoreOp::cancel, d, [&] { store->cancel(d, tick()); });
  // A cancel requested while active ends the task cancelled however it stops.
  const auto e = enqueue("qe");
  claim_one("qe", e, far());
  step(StoreOp::cancel, e, [&] { store->cancel(e, tick()); });  // requested: still active
  step(StoreOp::fail, e, [&] { store->fail(e, "w1", "x", far(), tick()); });
  const auto f = enqueue("qf");
  claim_one("qf", f, far());
  step(StoreOp::release, f, [&] { store->release(f, "w1", now, tick()); });
  claim_one("qf", f, far());
  step(StoreOp::release, f, [&] { store->release(f, "w1", now + seconds(5), tick()); });
  now += seconds(10);
  claim_one("qf", f, far());
  store->cancel(f, tick());
  step(StoreOp::release, f, [&] { store->release(f, "w1", now, tick()); });
  const auto g = enqueue("qg");
  claim_one("qg", g, far());
  step(StoreOp::finish_cancelled, g, [&] { store->finish_cancelled(g, "w1", tick()); });
  // Expired leases: back to pending, dead on the last attempt, or cancelled.
  const auto h = enqueue("qh");
  claim_one("qh", h, now + seconds(2));
  const auto i = enqueue("qi", {}, 1);
  claim_one("qi", i, now + seconds(2));
  const auto j = enqueue("qj");
  claim_one("qj", j, now + seconds(2));
  store->cancel(j, tick());
  const auto before_h = state_of(h);
  const auto before_i = state_of(i);
  const auto before_j = state_of(j);
  now += seconds(10);
  EXPECT_EQ(store->reclaim_expired(now), 3U);
  note(StoreOp::reclaim, before_h, state_of(h));
  note(StoreOp::reclaim, before_i, state_of(i));
  note(StoreOp::reclaim, before_j, state_of(j));

  for (std::size_t k = 0; k < kTransitions.size(); ++k) {
    const auto& t = kTransitions[k];
    EXPECT_TRUE(seen.contains(k)) << "not driven: " << to_string(t.op) << " "
                                  << (t.from ? to_string(*t.from) : "new") << " -> "
                                  << to_string(t.to);
  }
}

}  // namespace
}  // namespace errand::store
