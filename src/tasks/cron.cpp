#include "errand/tasks/cron.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace errand::tasks {

namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::hours;
using std::chrono::minutes;
using store::TimePoint;

// Four years of days: any satisfiable expression matches within that window.
constexpr int kSearchDays = 4 * 366 + 1;

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto end = std::min(text.find(sep, pos), text.size());
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// Sets the bits a field selects within [lo, hi]; throws on anything else.
template <std::size_t N>
bool parse_field(std::string_view field, int lo, int hi, std::bitset<N>& bits,
                 std::string_view name) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(fmt::format("cron {} field '{}': {}", name, field, why));
  };
  const auto number = [&](std::string_view t) {
    int v = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || ptr != t.data() + t.size()) throw bad("not a number");
    return v;
  };
  const bool star = field.starts_with('*');  // "*" or "*/n": unrestricted, as in Vixie cron
  for (const auto item : split(field, ',')) {
    auto range = item;
    int step = 1;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      step = number(item.substr(slash + 1));
      if (step < 1) throw bad("step must be at least 1");
    }
    int first = lo;
    int last = hi;
    if (range != "*") {
      const auto dash = range.find('-');
      first = number(range.substr(0, dash));
      last = dash == std::string_view::npos ? first : number(range.substr(dash + 1));
      if (dash == std::string_view::npos && item.find('/') != std::string_view::npos) last = hi;
    }
    if (first < lo || last > hi || first > last) {
      throw bad(fmt::format("values must be within {}-{}", lo, hi));
    }
    for (int v = first; v <= last; v += step) {
      bits.set(static_cast<std::size_t>(v));
      if (step > last - v) break;  // the next step would pass `last` (and could overflow)
    }
  }
  return star;
}

TimePoint day_of(TimePoint t) {
  return floor<days>(t);
}

}  // namespace

CronSchedule CronSchedule::parse(std::string_view expression) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kMacros = {{
      {"@hourly", "0 * * * *"},
      {"@daily", "0 0 * * *"},
      {"@weekly", "0 0 * * 0"},
      {"@monthly", "0 0 1 * *"},
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
  }};
  for (const auto& [macro, expansion] : kMacros) {
    if (expression == macro) expression = expansion;
  }
  std::vector<std::string_view> fields;
  for (const auto f : split(expression, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 5) {
    throw std::invalid_argument(fmt::format(
        "cron expression '{}': expected 5 fields (minute hour day month weekday)", expression));
  }
  CronSchedule c;
  parse_field(fields[0], 0, 59, c.minutes_, "minute");
  parse_field(fields[1], 0, 23, c.hours_, "hour");
  c.any_day_ = parse_field(fields[2], 1, 31, c.days_, "day-of-month");
  parse_field(fields[3], 1, 12, c.months_, "month");
  std::bitset<8> weekdays;
  c.any_weekday_ = parse_field(fields[4], 0, 7, weekdays, "day-of-week");
  for (std::size_t d = 0; d < 7; ++d) c.weekdays_[d] = weekdays[d];
  if (weekdays[7]) c.weekdays_.set(0);  // 7 is Sunday too
  return c;
}

bool CronSchedule::day_matches(TimePoint day) const {
  const std::chrono::sys_days d = floor<days>(day);
  const std::chrono::year_month_day ymd{d};
  if (!months_[static_cast<unsigned>(ymd.month())]) return false;
  const bool dom = days_[static_cast<unsigned>(ymd.day())];
  const bool dow = weekdays_[std::chrono::weekday{d}.c_encoding()];
  if (any_day_ && any_weekday_) return true;
  if (any_day_) return dow;
  if (any_weekday_) return dom;
  return dom || dow;  // both restricted: either (Vixie cron)
}

TimePoint CronSchedule::next(TimePoint after) const {
  TimePoint t = floor<minutes>(after) + minutes(1);
  const TimePoint end = t + days(kSearchDays);
  while (t < end) {
    const TimePoint day = day_of(t);
    if (!day_matches(day)) {
      t = day + days(1);
      continue;
    }
    const auto h = static_cast<std::size_t>(floor<hours>(t - day).count());
    if (!hours_[h]) {
      t = day + hours(h + 1);
      continue;
    }
    const auto m = static_cast<std::size_t>(floor<minutes>(t - day - hours(h)).count());
    if (!minutes_[m]) {
      t += minutes(1);
      continue;
    }
    return t;
  }
  return TimePoint::max();
}

TimePoint CronSchedule::latest(TimePoint at) const {
  TimePoint t = floor<minutes>(at);
  const TimePoint end = t - days(kSearchDays);
  while (t > end) {
    const TimePoint day = day_of(t);
    if (!day_matches(day)) {
      t = day - minutes(1);
      continue;
    }
    const auto h = static_cast<std::size_t>(floor<hours>(t - day).count());
    if (!hours_[h]) {
      t = day + hours(h) - minutes(1);
      continue;
    }
    const auto m = static_cast<std::size_t>(floor<minutes>(t - day - hours(h)).count());
    if (!minutes_[m]) {
      t -= minutes(1);
      continue;
    }
    return t;
  }
  return TimePoint::min();
}

}  // namespace errand::tasks
