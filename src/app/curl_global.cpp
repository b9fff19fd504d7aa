#include "app/curl_global.hpp"

#include <curl/curl.h>

#include <mutex>

namespace errand::app::detail {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace errand::app::detail
