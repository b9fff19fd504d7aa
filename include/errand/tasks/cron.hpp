#pragma once
// CronSchedule: the classic five-field cron expression, evaluated in UTC.
//
//   minute hour day-of-month month day-of-week
//   "*/15 * * * *"   every 15 minutes      "0 3 * * 1-5"   03:00 on weekdays
//   "@hourly" "@daily" "@weekly" "@monthly" "@yearly" (or "@annually")
//
// Each field takes `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and
// comma-separated lists of those. Day of week is 0-6 from Sunday (7 is Sunday
// too). As in Vixie cron, when both day fields are restricted a day matches if
// either does. Names (JAN, MON) and seconds are not supported. A plain value:
// immutable after parse(), safe to share between threads.

#include <bitset>
#include <string_view>

#include "errand/store/task_record.hpp"

namespace errand::tasks {

class CronSchedule {
 public:
  // Throws std::invalid_argument naming the bad field.
  [[nodiscard]] static CronSchedule parse(std::string_view expression);

  // The first matching minute strictly after `after`; TimePoint::max() if none
  // within four years (e.g. "0 0 30 2 *").
  [[nodiscard]] store::TimePoint next(store::TimePoint after) const;
  // The last matching minute at or before `at`; TimePoint::min() if none
  // within four years.
  [[nodiscard]] store::TimePoint latest(store::TimePoint at) const;

 private:
  [[nodiscard]] bool day_matches(store::TimePoint day) const;

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool any_day_ = true;      // day-of-month field was "*"
  bool any_weekday_ = true;  // day-of-week field was "*"
};

}  // namespace errand::tasks
