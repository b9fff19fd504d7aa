#include "errand/detail/stuck_exit.hpp"

#include <cstdio>
#include <cstdlib>

namespace errand::detail {

void exit_stuck(const observe::Logger& logger, std::string_view why,
                observe::Logger::Fields fields) {
  fields["exit_status"] = kStuckExitCode;
  logger.error(why, std::move(fields));
  // Lines written through stdio (a user's own) go out too; the logger's sinks
  // flush on every line.
  (void)std::fflush(nullptr);
  std::_Exit(kStuckExitCode);
}

}  // namespace errand::detail
