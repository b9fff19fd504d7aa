// I/O threads: each has its own io_context; a connection is given to the one
// with the fewest open connections and stays there.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"

namespace errand::http {
namespace {

using test::Client;
using test::TestServer;

std::string this_thread_name() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

http::ServerConfig two_threads() {
  auto cfg = TestServer::defaults();
  cfg.threads = 2;
  return cfg;
}

TEST(IoThreads, AConnectionStaysOnOneThreadAndTheNextGoesToTheOther) {
  TestServer srv(two_threads());
  srv.router().get("/thread", [](Context& c) { c.text(200, this_thread_name()); });
  srv.start();

  Client a(srv.port());
  const auto first = a.request("GET", "/thread").body;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.request("GET", "/thread").body, first);

  Client b(srv.port());  // while `a` is open: the other thread has none
  const auto second = b.request("GET", "/thread").body;
  EXPECT_NE(second, first);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.request("GET", "/thread").body, second);

  // Each thread counts its own requests; stats() sums them.
  EXPECT_EQ(srv.server().stats().requests_total, 12U);
  EXPECT_EQ(srv.server().stats().connections, 2U);
}

TEST(IoThreads, AHandlerThatBlocksItsThreadStallsOnlyThatThreadsConnections) {
  TestServer srv(two_threads());
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> entered;
  // A non-blocking route that blocks anyway: the mistake this bounds.
  srv.router().get("/stuck", [&](Context& c) {
    entered.set_value();
    released.wait();
    c.text(200, "late");
  });
  srv.router().get("/thread", [](Context& c) { c.text(200, this_thread_name()); });
  srv.start();

  Client a(srv.port());
  a.send(test::raw_request("GET", "/stuck"));
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  Client b(srv.port());  // on the other thread, which is free
  EXPECT_EQ(b.request("GET", "/thread").status, 200);
  release.set_value();
  EXPECT_EQ(a.read().body, "late");
}

// What `top -H` shows an operator (docs/operations.md, "Threads, by name").
TEST(IoThreads, AreNamedForTheOperator) {
  TestServer srv(two_threads());
  srv.start();
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  EXPECT_EQ(names.count("errand-io-0"), 1U);
  EXPECT_EQ(names.count("errand-io-1"), 1U);
  EXPECT_EQ(names.count("errand-accept"), 1U);
  EXPECT_GE(names.count("errand-blocking"), 1U);
}

}  // namespace
}  // namespace errand::http
