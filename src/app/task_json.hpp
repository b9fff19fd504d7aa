#pragma once
// Internal: how tasks look on the wire. Times are RFC 3339 in UTC with
// milliseconds ("2026-11-24T21:00:00.123Z").

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "errand/store/store.hpp"

namespace errand::app::detail {

[[nodiscard]] std::string format_time(store::TimePoint t);
// "2026-11-24T21:00:00Z", with optional fraction and a Z or ±HH:MM offset.
[[nodiscard]] std::optional<store::TimePoint> parse_time(std::string_view text);

// The whole record; `with_bodies` false leaves out payload and result (lists).
[[nodiscard]] boost::json::object task_json(const store::TaskRecord& r, bool with_bodies = true);
[[nodiscard]] boost::json::object queue_json(const store::QueueInfo& q);

// A task id as new_task_id() makes them: 26 characters of Crockford base32.
[[nodiscard]] bool valid_task_id(std::string_view id);

}  // namespace errand::app::detail
