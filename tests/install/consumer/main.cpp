// Serves one route and runs one typed task against the installed library,
// then says "consumer: ok". Exit status 0 only if all of it worked.
#include <errand/errand.hpp>
#include <errand/store/memory_store.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

struct Greeting {
  std::string name;
};
BOOST_DESCRIBE_STRUCT(Greeting, (), (name))

int main() {
  errand::AppOptions options;
  options.http.address = "127.0.0.1";
  options.http.port = 0;
  options.store = std::make_shared<errand::store::MemoryStore>();
  options.logger = errand::observe::Logger::null();
  errand::App app(options);
  std::atomic<bool> greeted{false};
  app.tasks().handle<Greeting>("greet", [&](errand::tasks::TaskContext&, const Greeting& g) {
    greeted = g.name == "installed";
  });
  app.start();
  app.tasks().enqueue("greet", errand::json::to_json(Greeting{"installed"}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!greeted && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a poll, not a timed wait
  }
  app.stop();
  if (!greeted) {
    std::cerr << "consumer: the task did not run\n";
    return 1;
  }
  std::cout << "consumer: ok (port " << app.port() << ")\n";
  return 0;
}
