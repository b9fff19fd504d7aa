// The process the crash test kills: it enqueues and processes tasks on a SQLite
// file, appending the id of every acknowledged enqueue to a file (one write(2)
// per id, after enqueue returned), until it is killed with SIGKILL.
//
//   errand_crash_child <db-file> <ack-file>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB ACKS\n", argv[0]);
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
  auto store =
      std::make_shared<errand::store::SqliteStore>(errand::store::SqliteOptions{.path = argv[1]});
  errand::tasks::RuntimeConfig cfg;
  cfg.queues = {{"default", 4, 1}};
  cfg.lease = 2s;
  cfg.poll_interval = 20ms;
  cfg.owner = "crash-child";
  errand::tasks::Runtime rt(store, cfg);
  rt.handle_raw("work", [](errand::tasks::TaskContext& t) { t.sleep_for(1ms); });
  rt.start();

  const int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return 3;
  {
    std::vector<std::jthread> producers;
    for (int p = 0; p < 4; ++p) {
      producers.emplace_back([&rt, fd, p] {
        // Bounded, in case nobody kills us: 5000 tasks per producer.
        for (int i = 0; i < 5000; ++i) {
          const std::string line = rt.enqueue("work", {{"p", p}, {"i", i}}).id + "\n";
          if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return;
        }
      });
    }
    for (auto& t : producers) t.join();  // joined, never asked to stop: we wait for SIGKILL
  }
  close(fd);
  rt.stop();
  return 0;
}
