#pragma once
// The text forms of `errand serve`'s flags, its config file and environment:
// each parser turns one value into the library's configuration types, or
// throws std::invalid_argument with a message fit for the command line.
// Range checks of the resulting configuration are errand::app::validate()'s,
// so a program that builds a Config in code gets the same ones.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errand/app/config.hpp"

namespace errand::cli {

using app::ConcurrencyRule;
using app::RateLimitRule;

// "default=4,mail=2:3,bulk=16:1:32": queue name = workers [: weight [: prefetch]].
[[nodiscard]] std::vector<tasks::QueueConfig> parse_queues(std::string_view text);

// "/v1/tasks=100:200" (100/s, burst 200, per client IP), "/=1000:2000:global",
// "/v1=50:100:header:X-API-Key".
[[nodiscard]] RateLimitRule parse_rate_limit(std::string_view text);
// "/v1/tasks=64" (no waiting), "/v1=32:2s" (wait up to 2 s for a slot).
[[nodiscard]] ConcurrencyRule parse_concurrency_limit(std::string_view text);
// "mail=1000,default=50000": waiting tasks at most, per queue (0: unlimited).
[[nodiscard]] std::map<std::string, std::size_t, std::less<>> parse_queue_limits(
    std::string_view text);

// "nightly=cron:0 3 * * *:report.build", "tick=every:1m:demo.noop:default",
// "ping=every:30s:http.request:hooks:{\"url\":\"...\"}":
// NAME = every:DURATION | cron:EXPRESSION, then TYPE [: QUEUE [: PAYLOAD]].
[[nodiscard]] app::ScheduleRule parse_schedule(std::string_view text);

// "250ms", "10s", "2m", "1h"; a bare number is seconds.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);
// "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces), "localhost:80".
[[nodiscard]] std::pair<std::string, std::uint16_t> parse_listen(std::string_view text);

}  // namespace errand::cli
