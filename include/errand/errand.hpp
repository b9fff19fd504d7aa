#pragma once
// Everything a service built on errand usually needs: the App (HTTP server +
// task runtime over one store), the HTTP framework, and the task API.

#include <boost/describe/class.hpp>  // IWYU pragma: export (BOOST_DESCRIBE_STRUCT for bind/typed tasks)

#include "errand/app/app.hpp"             // IWYU pragma: export
#include "errand/http/context.hpp"        // IWYU pragma: export
#include "errand/http/middleware.hpp"     // IWYU pragma: export
#include "errand/http/server.hpp"         // IWYU pragma: export
#include "errand/store/memory_store.hpp"  // IWYU pragma: export
#include "errand/store/sqlite_store.hpp"  // IWYU pragma: export
#include "errand/tasks/runtime.hpp"       // IWYU pragma: export
