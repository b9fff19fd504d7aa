#pragma once
// What the runtime recorded for one attempt: the value hooks, metrics
// (`task_execution_count{outcome=...}`) and log lines share. Distinct from
// Outcome::Kind, which is what a handler asked for: a handler's `done` is
// recorded as `lost` when the lease was gone, its `retry` as `dead` on the
// last attempt, and a shutdown turns anything into `requeued`.

#include <cstdint>
#include <string_view>

namespace errand::tasks {

enum class AttemptOutcome : std::uint8_t {
  succeeded,
  retrying,   // failed; another attempt is scheduled (backoff)
  dead,       // failed for the last time, or permanently
  cancelled,  // cancel requested, or the handler answered Outcome::cancelled
  requeued,   // shutdown or a rate-limit turn: back to the store, the attempt not counted
  snoozed,    // Outcome::snooze: back to the store at a later time, not counted
  lost,       // the lease was gone or the store failed: the task will be reclaimed
};

// "succeeded", "retrying", ... (the metric label and log value).
[[nodiscard]] std::string_view to_string(AttemptOutcome outcome);

}  // namespace errand::tasks
