#include "detail/curl_global.hpp"

#include <curl/curl.h>

#include <mutex>

namespace errand::detail {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace errand::detail
