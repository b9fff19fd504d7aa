#pragma once
// The Store contract as a fixture every backend instantiates from its own test
// file, with one line:
//
//   INSTANTIATE_TEST_SUITE_P(Redis, StoreContract,
//                            ::testing::Values(contract::Backend{"redis", make_redis}),
//                            contract::backend_name);
//
// The tests themselves are in store_contract_test.cpp, written once.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "errand/store/store.hpp"
#include "support/temp_dir.hpp"

namespace errand::store {

inline const TimePoint t0{std::chrono::milliseconds(1'700'000'000'000)};

namespace contract {

struct Backend {
  std::string name;
  // A new, empty store; `dir` is a temporary directory of the test's own.
  std::function<std::unique_ptr<Store>(const std::filesystem::path& dir)> make;
};

// How gtest names the parameter in its output.
inline void PrintTo(const Backend& b, std::ostream* os) {
  *os << b.name;
}
inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param.name;
}

}  // namespace contract

class StoreContract : public ::testing::TestWithParam<contract::Backend> {
 protected:
  void SetUp() override { store = GetParam().make(dir.path()); }

  NewTask task(std::string type = "t", std::string queue = "default") {
    NewTask t;
    t.id = new_task_id(t0);
    t.type = std::move(type);
    t.queue = std::move(queue);
    t.payload = R"({"n":1})";
    t.max_attempts = 3;
    return t;
  }
  std::string add(NewTask t, TimePoint now = t0) { return store->enqueue(std::move(t), now).id; }
  Lease lease(std::string owner = "w1", TimePoint until = t0 + std::chrono::seconds(30)) {
    return {std::move(owner), until};
  }
  TaskRecord get(const std::string& id) {
    auto r = store->get(id);
    EXPECT_TRUE(r.has_value()) << id;
    return r.value_or(TaskRecord{});
  }

  errand::test::TempDir dir;
  std::unique_ptr<Store> store;
};

}  // namespace errand::store
