// Task ids: what every backend stores, generated once here.
#include <gtest/gtest.h>

#include "errand/store/task_record.hpp"

namespace errand::store {
namespace {

using std::chrono::milliseconds;

TEST(TaskId, IdsSortByCreationTime) {
  std::string prev;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_task_id(TimePoint{milliseconds(1'700'000'000'000)} + milliseconds(i / 10));
    ASSERT_EQ(id.size(), 26U);
    ASSERT_LT(prev, id);
    prev = id;
  }
}

}  // namespace
}  // namespace errand::store
