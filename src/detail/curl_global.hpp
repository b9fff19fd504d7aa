#pragma once
// Internal: libcurl's process-wide set-up, done once however many users or
// threads ask: the built-in task types (http.request, email.send) and the
// span exporter.

namespace errand::detail {

// curl_global_init, once per process (thread-safe).
void ensure_curl();

}  // namespace errand::detail
