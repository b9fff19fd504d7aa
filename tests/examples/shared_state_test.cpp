// examples/shared_state: a counter and a cache hit by many concurrent clients
// end up exactly right — and, in the TSan build, without a data race (the
// instrumented example would exit non-zero).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "examples/example_process.hpp"

namespace errand::test {
namespace {

TEST(SharedStateExample, ConcurrentClientsCountExactlyAndReadTheirOwnWrites) {
  ExampleProcess app("shared_state");
  ASSERT_NE(app.port(), 0) << app.log();
  constexpr int kClients = 8;
  constexpr int kEach = 100;
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> clients;
    for (int t = 0; t < kClients; ++t) {
      clients.emplace_back([&, t] {
        Client c(app.port(), 30s);  // one keep-alive connection per client
        for (int i = 0; i < kEach; ++i) {
          if (c.request("POST", "/counter").status != 200) ++failures;
          const std::string key = "/cache/k" + std::to_string(t) + "-" + std::to_string(i % 10);
          const std::string value = "v" + std::to_string(i);
          if (c.request("PUT", key, value).status != 204) ++failures;
          const auto got = c.request("GET", key);
          if (got.status != 200 || got.json().at("value").as_string() != value) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(app.get("/counter").json().at("value").as_int64(), kClients * kEach);
  EXPECT_EQ(app.get("/cache").json().at("size").as_int64(), kClients * 10);
  EXPECT_EQ(app.get("/cache/missing").status, 404);
  EXPECT_EQ(app.stop(), 0) << "a sanitizer report makes the example exit non-zero:\n" << app.log();
}

}  // namespace
}  // namespace errand::test
