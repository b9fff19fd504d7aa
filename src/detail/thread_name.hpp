#pragma once
// Internal: names the calling thread, as `top -H`, `ps -L`, perf and gdb show
// it ("errand-io-0", "errand-sqlite", ...), so an operator can tell which of
// errand's threads is busy. Linux keeps 15 bytes of a name: longer ones are
// cut. Never fails the caller: a name is a convenience.

#include <string>

namespace errand::detail {

void name_this_thread(const std::string& name) noexcept;

}  // namespace errand::detail
