// Gin:    ticker := time.NewTicker(5 * time.Second)
//         go func() { for { select { case <-ticker.C: sync(); case <-quit: return } } }()
// errand: runtime.every("inventory.sync", 5s, ...) enqueues one task per tick —
//         once per tick even with several processes on one store — and runs it
//         on a worker like any task (retries, deadline, logs, metrics). On
//         SIGTERM the schedule stops with the runtime; a sync in progress
//         finishes (or is requeued after the grace), no thread is left behind.
//
//   SYNC_EVERY_MS=1000 build/debug/examples/errand_example_periodic_sync
//   curl -s localhost:8080/syncs     # {"syncs": 3}
#include <atomic>

#include <errand/errand.hpp>

#include "../example_env.hpp"

int main() {
  const auto every =
      std::chrono::milliseconds(example::env_int("SYNC_EVERY_MS", 5000, 10, 86'400'000));
  errand::App app(example::options("periodic_sync"));
  std::atomic<int> syncs{0};

  app.tasks().handle_raw("inventory.sync",
                         [&](errand::tasks::TaskContext& t) {
                           // ... fetch the supplier's stock and update ours ...
                           const int n = ++syncs;
                           t.log().info("inventory synced", {{"sync", n}});
                           return errand::tasks::Outcome::done({{"sync", n}});
                         },
                         {.max_attempts = 1});  // a missed tick is covered by the next one
  app.tasks().every("inventory.sync", every, {"inventory.sync"});

  app.http().get("/syncs", [&](errand::http::Context& c) {
    c.json(200, {{"syncs", syncs.load()}});
  });
  return app.run();
}
