#pragma once
// Internal: libcurl's process-wide set-up for the built-in task types
// (http.request, email.send), done once however many types or threads ask.

namespace errand::app::detail {

// curl_global_init, once per process (thread-safe).
void ensure_curl();

}  // namespace errand::app::detail
