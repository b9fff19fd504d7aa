// Cron expressions as a schedule flag or config file may give them: parse()
// refuses with std::invalid_argument or gives a schedule whose next() and
// latest() agree (next(t) is a matching minute after t, and latest() of it
// is itself).
#include <chrono>
#include <stdexcept>

#include "errand/tasks/cron.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
using errand::store::TimePoint;
using errand::tasks::CronSchedule;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto cron = CronSchedule::parse(errand::fuzz::text(data, size));
    // 2026-12-03T11:42:17.250Z: any instant will do; a fixed one keeps runs repeatable.
    const TimePoint from{std::chrono::milliseconds(1'796'298'137'250)};
    const auto next = cron.next(from);
    if (next != TimePoint::max()) {
      check(next > from, "next is after");
      check(next.time_since_epoch() % std::chrono::minutes(1) == std::chrono::milliseconds(0),
            "next is a whole minute");
      check(cron.latest(next) == next, "latest(next) is next");
      check(cron.next(next) > next, "next moves on");
    }
  } catch (const std::invalid_argument&) {  // NOLINT(bugprone-empty-catch): refused, as documented
  }
  return 0;
}
