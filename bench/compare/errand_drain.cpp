// errand's side of bench/compare/run for the task workloads, in the same shape
// as the BullMQ and Sidekiq drivers. STORE is a SQLite file or a redis:// URL.
//   errand_compare drain STORE N WORKERS [PREFETCH]   N no-op tasks stored
//       first (batches of 1000), then the runtime starts WORKERS workers.
//       Timed by the tasks themselves, as the BullMQ and Sidekiq drivers are:
//       from the first task's start to the last one's end, so neither the
//       start-up nor the polling for the end is counted. Results are kept,
//       as BullMQ keeps its jobs.
//   errand_compare fill STORE N                 N no-op tasks stored, nothing run
//   errand_compare work STORE N WORKERS [PREFETCH]   one worker node: runs
//       tasks until N have succeeded in the store (several such processes are
//       several nodes); prints when its first task started and its last
//       ended (ms since the epoch) and how many it ran
//   errand_compare pending STORE N              N tasks left pending in a queue
//       nobody serves; prints the process's resident memory and the file's size.
//   errand_compare populate STORE N             a store as it looks after a
//       while (bench/scale.sh): N/2 demo.noop tasks run to success in queue
//       `done`, then N/2 left pending in queue `parked`.
// SQLite synchronous=NORMAL: a task acknowledged survives a crash of the
// process (like Redis with appendfsync everysec, it may lose the last moments
// on a power cut). Prints one JSON object.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "errand/store/redis_store.hpp"
#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"

namespace {

double resident_bytes() {
  std::ifstream in("/proc/self/statm");
  double pages = 0;
  double resident = 0;
  in >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

std::int64_t epoch_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// When this process's first task started and its last one ended, stamped
// inside the handler (epoch microseconds, so that several processes compare).
struct Stamps {
  std::atomic<std::size_t> ran{0};
  std::atomic<std::int64_t> first_us{std::numeric_limits<std::int64_t>::max()};
  std::atomic<std::int64_t> last_us{0};

  void started() {
    const auto t = epoch_us();
    auto seen = first_us.load(std::memory_order_relaxed);
    while (t < seen && !first_us.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {
    }
  }
  void ended() {
    const auto t = epoch_us();
    auto seen = last_us.load(std::memory_order_relaxed);
    while (t > seen && !last_us.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {
    }
    ran.fetch_add(1, std::memory_order_release);
  }
};

void fill(errand::tasks::Runtime& rt, std::size_t n, const std::string& queue,
          const std::string& type = "noop") {
  std::vector<errand::tasks::TaskSpec> batch;
  for (std::size_t i = 0; i < n; i += batch.size()) {
    batch.clear();
    for (std::size_t k = i; k < std::min(n, i + 1000); ++k) {
      errand::tasks::TaskSpec spec{type, {{"i", k}}, {}};
      spec.options.queue = queue;
      batch.push_back(std::move(spec));
    }
    rt.enqueue_batch(batch);
  }
}

std::shared_ptr<errand::store::Store> open_store(const std::string& spec, bool fresh) {
  if (errand::store::is_redis_url(spec)) {
    errand::store::RedisOptions options;
    options.endpoint = errand::store::parse_redis_url(spec);
    return std::make_shared<errand::store::RedisStore>(options);
  }
  // A run killed midway leaves its WAL behind; with a new file it would be
  // a mismatched log (SQLite's "disk I/O error").
  if (fresh) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(spec + suffix);
  }
  return std::make_shared<errand::store::SqliteStore>(errand::store::SqliteOptions{.path = spec});
}

std::size_t succeeded(errand::store::Store& store) {
  std::size_t done = 0;
  for (auto& q : store.queues()) done += q.succeeded;
  return done;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: %s drain|fill|work|pending|populate STORE N [WORKERS [PREFETCH]]\n",
                 argv[0]);
    return 2;
  }
  errand::store::tune_sqlite_for_errand();  // as the errand binary does
  const std::string mode = argv[1];
  const std::string spec = argv[2];
  const auto n = static_cast<std::size_t>(std::stoull(argv[3]));
  const unsigned workers = argc > 4 ? static_cast<unsigned>(std::stoul(argv[4])) : 4;
  const unsigned prefetch = argc > 5 ? static_cast<unsigned>(std::stoul(argv[5])) : 0;
  auto store = open_store(spec, mode != "work");
  errand::tasks::RuntimeConfig cfg;
  cfg.queues = {{.name = "bench", .concurrency = workers, .prefetch = prefetch}};
  if (mode == "fill" || mode == "pending") cfg.queues.clear();
  if (mode == "populate") cfg.queues.front().name = "done";
  cfg.max_waiting = 0;
  cfg.poll_interval = std::chrono::milliseconds(50);
  errand::tasks::Runtime rt(store, cfg);
  Stamps stamps;
  rt.handle_raw("noop", [&stamps](errand::tasks::TaskContext&) {
    stamps.started();
    stamps.ended();
  });
  // populate's tasks are `errand serve`'s own no-op type, so that a server
  // on the file can run them.
  rt.handle_raw("demo.noop", [](errand::tasks::TaskContext&) {});

  if (mode == "pending") {
    fill(rt, n, "parked");  // not served: everything stays pending
    std::uintmax_t file = 0;
    if (!errand::store::is_redis_url(spec)) file = std::filesystem::file_size(spec);
    std::printf("{\"jobs\":%zu,\"rss_bytes\":%.0f,\"db_bytes\":%ju}\n", n, resident_bytes(), file);
    return 0;
  }
  if (mode == "populate") {
    fill(rt, n / 2, "done", "demo.noop");
    rt.start();
    while (succeeded(*store) < n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fill(rt, n - n / 2, "parked", "demo.noop");  // nobody serves `parked`
    rt.stop();
    std::printf("{\"jobs\":%zu}\n", n);
    return 0;
  }
  if (mode == "fill") {
    fill(rt, n, "bench");
    std::printf("{\"jobs\":%zu}\n", n);
    return 0;
  }
  if (mode == "drain") fill(rt, n, "bench");
  rt.start();
  // Until every task is recorded as succeeded (here or, in `work`, by any
  // node): not timed, the stamps are.
  while (succeeded(*store) < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  rt.stop();
  const auto ran = stamps.ran.load(std::memory_order_acquire);
  const double first_ms = static_cast<double>(stamps.first_us.load()) / 1000;
  const double last_ms = static_cast<double>(stamps.last_us.load()) / 1000;
  const double secs = (last_ms - first_ms) / 1000;
  std::printf("{\"jobs_per_s\":%.1f,\"jobs\":%zu,\"ran\":%zu,\"first_ms\":%.3f,\"last_ms\":%.3f}\n",
              ran > 0 && secs > 0 ? static_cast<double>(mode == "drain" ? n : ran) / secs : 0.0, n,
              ran, first_ms, last_ms);
  return 0;
}
