#pragma once
// The `errand` command line: `serve` (flags, a TOML config file, ERRAND_*
// environment → app::Config → app::serve), the client subcommands (enqueue,
// status, cancel, retry, list, queues), --version and --help.

#include <functional>

#include "errand/app/config.hpp"

namespace errand::cli {

// Returns the exit code: 0 success, 1 failure, 2 usage, 3 server unreachable.
[[nodiscard]] int main(int argc, char** argv);

// main(), with `serve` given the parsed configuration in place of
// app::serve (for the configuration fuzzer: everything but the server).
[[nodiscard]] int run(int argc, char** argv, const std::function<int(const app::Config&)>& serve);

}  // namespace errand::cli
