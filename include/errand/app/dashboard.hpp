#pragma once
// The web dashboard (docs/operations.md, "Dashboard"): its assets are built
// from web/dashboard/ and embedded in the library at build time, so one
// binary serves everything.
//
// install_dashboard() adds GET routes for every asset under /ui/ (index.html
// at /ui/, the API page at /ui/api.html, scripts and styles under
// /ui/assets/ with content hashes in their names), GET /ui/config.json, and
// redirects / and /ui to /ui/. Assets are served gzip-compressed to clients
// that accept it; hashed ones are cached for a year (immutable), the pages
// are revalidated by ETag (304 on If-None-Match). They hold no data, so a
// server with bearer authentication leaves them open (serve() does): the
// page asks for the token and sends it on each API call itself.
//
// The routes share nothing mutable: thread-safe like any handler. A library
// built with -DERRAND_DASHBOARD=OFF has no assets; then /ui/ answers 404
// `dashboard_not_built` saying so.

#include <string>

#include "errand/http/router.hpp"

namespace errand::app {

struct DashboardOptions {
  // A link to the user's trace viewer for a task's trace id; "{trace_id}"
  // is replaced, e.g. "http://jaeger:16686/trace/{trace_id}". Empty: none.
  std::string trace_url{};
};

void install_dashboard(http::Router& router, DashboardOptions options = {});

// True when the library was built with the dashboard's assets.
[[nodiscard]] bool dashboard_built();

}  // namespace errand::app
