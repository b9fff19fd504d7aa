#pragma once
// The `errand` command line: `serve` (flags, a TOML config file, ERRAND_*
// environment → app::Config → app::serve), the client subcommands (enqueue,
// status, cancel, retry, list, queues), --version and --help.

namespace errand::cli {

// Returns the exit code: 0 success, 1 failure, 2 usage, 3 server unreachable.
[[nodiscard]] int main(int argc, char** argv);

}  // namespace errand::cli
