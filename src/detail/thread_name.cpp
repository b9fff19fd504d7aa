#include "detail/thread_name.hpp"

#include <pthread.h>

namespace errand::detail {

void name_thread(std::jthread& thread, const std::string& name) noexcept {
  constexpr std::size_t kMax = 15;  // the kernel's TASK_COMM_LEN, less its NUL
  const std::string cut = name.substr(0, kMax);
  (void)pthread_setname_np(thread.native_handle(), cut.c_str());
}

}  // namespace errand::detail
