#pragma once
// What a bounded shutdown does with a thread it can neither join nor leave
// behind: a handler that ignores its stop token past the grace period and the
// extra wait. Server::stop() and Runtime::stop() end the process with
// kStuckExitCode rather than hang, so SIGTERM always ends an errand process.

#include <string_view>

#include "errand/observe/logger.hpp"

namespace errand {

// The exit status of a process whose shutdown gave up on a stuck handler
// (EX_SOFTWARE in sysexits.h: an internal error, for a supervisor to see).
inline constexpr int kStuckExitCode = 70;

namespace detail {

// Logs `why` with `fields` at error level, flushes, and ends the process at
// once with kStuckExitCode: no destructor runs, since the stuck thread may
// still use what they would free.
[[noreturn]] void exit_stuck(const observe::Logger& logger, std::string_view why,
                             observe::Logger::Fields fields = {});

}  // namespace detail
}  // namespace errand
