#pragma once
// The REST task API (docs/api.md): /v1/tasks, /v1/tasks/batch,
// /v1/tasks/{id}[/cancel|/retry], /v1/queues[/{name}/pause|resume],
// /v1/circuits, /v1/openapi.json and Gin's tutorial route POST /async-task.
//
// No route holds an I/O thread while the store works: POST /v1/tasks is
// deferred (parsed on the I/O thread, answered by the store's commit
// callback); every other route that touches the store is registered as
// blocking (it may wait for a group commit or a lock). Errors use the one JSON
// shape; task and store errors become HTTP errors through the App router's
// translator (task_errors_as_http in app.hpp), so install the API on an App's
// router, or add that translator to your own with Router::on_exception.

#include <cstddef>
#include <memory>

#include "errand/guard/circuit_breaker.hpp"
#include "errand/http/router.hpp"
#include "errand/observe/task_stats.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand::app {

struct TaskApiOptions {
  std::size_t max_batch = 1000;  // tasks per POST /v1/tasks/batch; beyond: 413
  std::size_t default_list_limit = 50;
  std::size_t max_list_limit = 1000;  // GET /v1/tasks?limit= beyond: 400
  // http.request's breakers (register_builtin_tasks' answer): GET /v1/circuits.
  std::shared_ptr<const guard::CircuitBreakers> circuits{};
  // This node's task statistics (App::task_stats()): GET /v1/stats adds the
  // other nodes' from their heartbeats. None: only the other nodes'.
  std::shared_ptr<const observe::TaskStats> stats{};
};

// The routes capture `runtime` by reference: it must outlive the router's
// server (an App owns both and stops the server first).
void install_task_api(http::Router& router, tasks::Runtime& runtime, TaskApiOptions options = {});

}  // namespace errand::app
