// app::validate(): every check of a serve configuration, whoever built it.
#include <gtest/gtest.h>

#include "errand/app/config.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

TEST(Config, BearerTokensMustBeLongAndPlain) {
  check_token("0123456789abcdef");
  check_token("abc-DEF_ghi.jkl~mno+pqr/stu=");
  for (const char* bad : {"", "short", "0123456789abcde", "0123456789 abcdef", "0123456789abcdef\"",
                          "0123456789abcdef\r"}) {
    EXPECT_THROW(check_token(bad), std::invalid_argument) << bad;
  }
}

// A message that names the setting, or "" when the config is accepted.
std::string refusal(const Config& c) {
  try {
    validate(c);
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

TEST(Config, TheDefaultsAreValid) {
  EXPECT_EQ(refusal(Config{}), "");
}

// The checks the command line used to make alone now refuse a Config built in
// code, the same way.
TEST(Config, ValidateRefusesWhatTheCommandLineRefused) {
  const std::vector<std::pair<std::string, std::function<void(Config&)>>> cases = {
      {"--lease", [](Config& c) { c.app.tasks.lease = 500ms; }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {{.name = "bad name!", .kind = "every", .every = 1s, .type = "t"}};
       }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {{.name = "s", .kind = "every", .every = 10ms, .type = "t"}};
       }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {{.name = "s", .kind = "cron", .cron = "61 * * * *", .type = "t"}};
       }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {{.name = "s", .kind = "every", .every = 1s, .type = "t", .payload = "[1]"}};
       }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {
             {.name = "s", .kind = "every", .every = 1s, .type = "t", .queue = "no queue"}};
       }},
      {"--schedule",
       [](Config& c) {
         c.schedules = {{.name = "s", .kind = "every", .every = 1s, .type = "t"},
                        {.name = "s", .kind = "cron", .cron = "@daily", .type = "t"}};
       }},
      {"--max-header-bytes", [](Config& c) { c.app.http.max_header_bytes = 100; }},
      {"--max-header-bytes", [](Config& c) { c.app.http.max_header_bytes = 1U << 25U; }},
      {"--max-connections", [](Config& c) { c.app.http.max_connections = 0; }},
      {"--blocking-threads", [](Config& c) { c.app.http.blocking_threads = 0; }},
      {"--request-timeout", [](Config& c) { c.app.request_timeout = 0ms; }},
      {"--queues", [](Config& c) { c.app.tasks.queues.clear(); }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"bad name!", 1, 1, 0}};
       }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"q", 0, 1, 0}};
       }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"q", 2000, 1, 0}};
       }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"q", 1, 0, 0}};
       }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"q", 1, 1, 9999}};
       }},
      {"--queues",
       [](Config& c) {
         c.app.tasks.queues = {{"q", 1, 1, 0}, {"q", 1, 1, 0}};
       }},
      {"--queue-max-waiting",
       [](Config& c) {
         c.app.tasks.queue_max_waiting = {{"b@d", 1}};
       }},
      {"--auth-token", [](Config& c) { c.auth_tokens = {"short"}; }},
      {"--auth-public", [](Config& c) { c.auth_public = {"/"}; }},
      {"--auth-public", [](Config& c) { c.auth_public = {""}; }},
      {"--rate-limit",
       [](Config& c) {
         c.rate_limits = {{"v1", {}}};
       }},
      {"--concurrency-limit",
       [](Config& c) {
         c.concurrency_limits = {{"nope", {}}};
       }},
      {"--concurrency-limit",
       [](Config& c) {
         ConcurrencyRule r{"/v1", {}};
         r.options.max_in_flight = 16;
         r.options.max_wait = 1s;
         c.app.http.blocking_threads = 16;  // each waiting request holds a blocking thread
         c.concurrency_limits = {r};
       }},
      {"--breaker-failures", [](Config& c) { c.breaker.failure_threshold = 0; }},
      {"--db", [](Config& c) { c.app.sqlite.path = ""; }},
  };
  for (const auto& [flag, spoil] : cases) {
    Config c;
    spoil(c);
    const auto why = refusal(c);
    EXPECT_NE(why.find(flag), std::string::npos) << flag << ": " << why;
  }
  Config memory;
  memory.store = Config::StoreKind::memory;
  memory.app.sqlite.path = "";
  EXPECT_EQ(refusal(memory), "");  // no file needed
}

}  // namespace
}  // namespace errand::app
