#pragma once
// Task types that `errand serve` ships, for people who do not write C++.
//
// demo.sleep  {"seconds": 5, "steps": 5, "fail_attempts": 0}
//   Sleeps in steps, reporting progress after each; stops at once when
//   cancelled; fails its first `fail_attempts` attempts on purpose (to watch
//   retries). seconds: 0..3600, steps: 1..1000. Result: {"slept_ms", "steps"}.

#include "errand/tasks/runtime.hpp"

namespace errand::app {

void register_demo_sleep(tasks::Runtime& runtime);
// Every built-in type.
void register_builtin_tasks(tasks::Runtime& runtime);

}  // namespace errand::app
