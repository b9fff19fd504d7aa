#pragma once
// Internal: how a built-in task's libcurl transfer (http.request, email.send)
// answers the task's stop request.

#include <curl/curl.h>

namespace errand::app {

// libcurl's progress callback (CURLOPT_XFERINFOFUNCTION), with
// CURLOPT_XFERINFODATA a `T*` whose `task` is the running task's context:
// a stop request (deadline, cancel, shutdown) aborts the transfer.
template <class T>
int abort_when_stopped(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<T*>(user)->task->stop_requested() ? 1 : 0;
}

}  // namespace errand::app
