#pragma once
// Internal: names a thread, as `top -H`, `ps -L`, perf and gdb show it
// ("errand-io-0", "errand-sqlite", ...), so an operator can tell which of
// errand's threads is busy. Named by the thread that starts it, so the name
// is there when the constructor that started it returns. Linux keeps 15
// bytes of a name: longer ones are cut. Never fails the caller: a name is a
// convenience.

#include <string>
#include <thread>

namespace errand::detail {

void name_thread(std::jthread& thread, const std::string& name) noexcept;

}  // namespace errand::detail
