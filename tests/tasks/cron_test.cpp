#include <gtest/gtest.h>

#include "errand/tasks/cron.hpp"

namespace errand::tasks {
namespace {

using namespace std::chrono;
using store::TimePoint;

TimePoint at(int y, unsigned mo, unsigned d, int h, int mi) {
  return TimePoint{sys_days{year{y} / month{mo} / day{d}} + hours(h) + minutes(mi)};
}

TEST(Cron, NextAndLatest) {
  const auto every15 = CronSchedule::parse("*/15 * * * *");
  EXPECT_EQ(every15.next(at(2026, 11, 24, 10, 7)), at(2026, 11, 24, 10, 15));
  EXPECT_EQ(every15.next(at(2026, 11, 24, 10, 15)), at(2026, 11, 24, 10, 30));  // strictly after
  EXPECT_EQ(every15.next(at(2026, 11, 24, 23, 59)), at(2026, 11, 25, 0, 0));
  EXPECT_EQ(every15.latest(at(2026, 11, 24, 10, 29)), at(2026, 11, 24, 10, 15));
  EXPECT_EQ(every15.latest(at(2026, 11, 24, 10, 30)), at(2026, 11, 24, 10, 30));  // at or before

  const auto weekdays = CronSchedule::parse("0 3 * * 1-5");  // 2026-11-28 is a Saturday
  EXPECT_EQ(weekdays.next(at(2026, 11, 27, 4, 0)), at(2026, 11, 30, 3, 0));
  EXPECT_EQ(weekdays.latest(at(2026, 11, 29, 12, 0)), at(2026, 11, 27, 3, 0));

  const auto leap = CronSchedule::parse("0 0 29 2 *");
  EXPECT_EQ(leap.next(at(2026, 3, 1, 0, 0)), at(2028, 2, 29, 0, 0));
  EXPECT_EQ(CronSchedule::parse("0 0 30 2 *").next(at(2026, 1, 1, 0, 0)), TimePoint::max());

  // Both day fields restricted: either matches (the 1st, or any Monday).
  const auto either = CronSchedule::parse("0 12 1 * 1");
  EXPECT_EQ(either.next(at(2026, 11, 24, 13, 0)), at(2026, 11, 30, 12, 0));  // Monday
  EXPECT_EQ(either.next(at(2026, 11, 30, 13, 0)), at(2026, 12, 1, 12, 0));   // the 1st

  EXPECT_EQ(CronSchedule::parse("@daily").next(at(2026, 11, 24, 10, 0)), at(2026, 11, 25, 0, 0));
  EXPECT_EQ(CronSchedule::parse("0 0 * * 7").next(at(2026, 11, 24, 0, 0)),
            at(2026, 11, 29, 0, 0));  // 7 is Sunday
  EXPECT_EQ(CronSchedule::parse("5,10-12/2 * * * *").next(at(2026, 1, 1, 0, 10)),
            at(2026, 1, 1, 0, 12));
  // A step larger than the range: just the first value, no overflow.
  EXPECT_EQ(CronSchedule::parse("59/2147483647 * * * *").next(at(2026, 1, 1, 0, 0)),
            at(2026, 1, 1, 0, 59));
}

TEST(Cron, BadExpressionsNameTheField) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                          "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *",
                          "@often", "1,,2 * * * *", "99999999999 * * * *"}) {
    EXPECT_THROW((void)CronSchedule::parse(bad), std::invalid_argument) << bad;
  }
  try {
    (void)CronSchedule::parse("* 99 * * *");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hour"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace errand::tasks
