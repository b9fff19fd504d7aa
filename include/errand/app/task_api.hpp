#pragma once
// The REST task API (docs/api.md): /v1/tasks, /v1/tasks/batch,
// /v1/tasks/{id}[/cancel|/retry], /v1/queues[/{name}/pause|resume],
// /v1/circuits, /v1/openapi.json and Gin's tutorial route POST /async-task.
//
// Every route that touches the store is registered as blocking: a store call
// may wait for a group commit or a lock, which must not stall an I/O thread.
// Errors use the one JSON shape; task-layer errors are mapped by
// to_http_error() (app.hpp).

#include <cstddef>
#include <memory>

#include "errand/guard/circuit_breaker.hpp"
#include "errand/http/router.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand::app {

struct TaskApiOptions {
  std::size_t max_batch = 1000;  // tasks per POST /v1/tasks/batch; beyond: 413
  std::size_t default_list_limit = 50;
  std::size_t max_list_limit = 1000;  // GET /v1/tasks?limit= beyond: 400
  // http.request's breakers (register_builtin_tasks' answer): GET /v1/circuits.
  std::shared_ptr<const guard::CircuitBreakers> circuits{};
};

void install_task_api(http::Router& router, tasks::Runtime& runtime, TaskApiOptions options = {});

}  // namespace errand::app
