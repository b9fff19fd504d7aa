#pragma once
// Every state change a task may make, written once: the stores check their
// changes against it (MemoryStore on every mutation, SqliteStore's SQL is
// tested against it), the contract suite drives each row on every backend, and
// docs/architecture.md shows it.
//
//   enqueue            ─► scheduled (run_at later) | pending
//   scheduled, retrying ─(run_at reached)─► pending
//   pending ─(claim)─► active
//   active ─(complete)─► succeeded
//   active ─(fail)─► retrying | dead | cancelled (a cancel was requested)
//   active ─(release: shutdown, rate-limit turn, snooze)─► pending | scheduled | cancelled
//   active ─(finish_cancelled)─► cancelled
//   active ─(reclaim: lease expired)─► pending | dead (last attempt) | cancelled
//   scheduled, pending, retrying ─(cancel)─► cancelled   (active: cancel is requested,
//                                                          the handler's outcome decides)
//   dead, cancelled ─(retry)─► pending
//   succeeded, dead, cancelled ─(remove, purge)─► gone
//
// Pure data: safe on any thread.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "errand/store/task_record.hpp"

namespace errand::store {

// The Store operation that makes a transition.
enum class StoreOp : std::uint8_t {
  enqueue,
  promote,  // run_at reached (inside claim and list; no call of its own)
  claim,
  complete,
  fail,
  release,
  finish_cancelled,
  cancel,
  reclaim,  // reclaim_expired
  retry,
};

[[nodiscard]] std::string_view to_string(StoreOp op);

struct Transition {
  StoreOp op;
  std::optional<TaskState> from;  // nullopt: the task is new
  TaskState to;
};

// A state may also stay as it is (a heartbeat, progress, a cancel request on
// an active task): that is not a transition.
inline constexpr std::array<Transition, 21> kTransitions{{
    {StoreOp::enqueue, std::nullopt, TaskState::pending},
    {StoreOp::enqueue, std::nullopt, TaskState::scheduled},
    {StoreOp::promote, TaskState::scheduled, TaskState::pending},
    {StoreOp::promote, TaskState::retrying, TaskState::pending},
    {StoreOp::claim, TaskState::pending, TaskState::active},
    {StoreOp::complete, TaskState::active, TaskState::succeeded},
    {StoreOp::fail, TaskState::active, TaskState::retrying},
    {StoreOp::fail, TaskState::active, TaskState::dead},
    {StoreOp::fail, TaskState::active, TaskState::cancelled},
    {StoreOp::release, TaskState::active, TaskState::pending},
    {StoreOp::release, TaskState::active, TaskState::scheduled},
    {StoreOp::release, TaskState::active, TaskState::cancelled},
    {StoreOp::finish_cancelled, TaskState::active, TaskState::cancelled},
    {StoreOp::reclaim, TaskState::active, TaskState::pending},
    {StoreOp::reclaim, TaskState::active, TaskState::dead},
    {StoreOp::reclaim, TaskState::active, TaskState::cancelled},
    {StoreOp::cancel, TaskState::scheduled, TaskState::cancelled},
    {StoreOp::cancel, TaskState::pending, TaskState::cancelled},
    {StoreOp::cancel, TaskState::retrying, TaskState::cancelled},
    {StoreOp::retry, TaskState::dead, TaskState::pending},
    {StoreOp::retry, TaskState::cancelled, TaskState::pending},
}};

// True when some operation moves a task from `from` (nullopt: new) to `to`.
[[nodiscard]] constexpr bool allowed(std::optional<TaskState> from, TaskState to) {
  for (const auto& t : kTransitions) {
    if (t.from == from && t.to == to) return true;
  }
  return false;
}
// True when `op` may move a task from `from` to `to`.
[[nodiscard]] constexpr bool allowed(StoreOp op, std::optional<TaskState> from, TaskState to) {
  for (const auto& t : kTransitions) {
    if (t.op == op && t.from == from && t.to == to) return true;
  }
  return false;
}

}  // namespace errand::store
