#include "store/sqlite_memory.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace errand::store::sqlite {

namespace {

// Before each block: its capacity. 16 bytes keep malloc's alignment.
constexpr std::size_t kHeader = 16;
constexpr int kClassBytes = 64;
constexpr int kClasses = kLargestCached / kClassBytes;

struct FreeBlock {
  FreeBlock* next;
};

// A thread's free blocks by size class. Freed when the thread exits; after
// that (a late free from another thread-local's destructor) blocks go
// straight to malloc and free.
struct Lists {
  std::array<FreeBlock*, kClasses> head{};
  std::array<int, kClasses> count{};
  Lists() = default;
  Lists(const Lists&) = delete;
  Lists& operator=(const Lists&) = delete;
  ~Lists();
};

thread_local bool lists_gone = false;  // trivially destructible: readable to the end

Lists& lists() {
  thread_local Lists l;
  return l;
}

Lists::~Lists() {
  lists_gone = true;
  for (FreeBlock*& h : head) {
    while (h != nullptr) {
      FreeBlock* next = h->next;
      std::free(reinterpret_cast<unsigned char*>(h) - kHeader);
      h = next;
    }
  }
}

// 0 past what an int holds: SQLite then fails the allocation (SQLITE_NOMEM).
int round_up(int n) {
  if (n <= 0) return kClassBytes;
  if (n <= kLargestCached) return (n + kClassBytes - 1) / kClassBytes * kClassBytes;
  const std::int64_t up = (std::int64_t{n} + 7) / 8 * 8;
  return up > std::numeric_limits<int>::max() ? 0 : static_cast<int>(up);
}

int class_of(std::uint64_t capacity) {
  return static_cast<int>(capacity / kClassBytes) - 1;
}

std::uint64_t& capacity_of(void* p) {
  return *reinterpret_cast<std::uint64_t*>(static_cast<unsigned char*>(p) - kHeader);
}

void* fresh(int capacity) {
  auto* raw =
      static_cast<unsigned char*>(std::malloc(kHeader + static_cast<std::size_t>(capacity)));
  if (raw == nullptr) return nullptr;
  *reinterpret_cast<std::uint64_t*>(raw) = static_cast<std::uint64_t>(capacity);
  return raw + kHeader;
}

void* allocate(int n) {
  const int capacity = round_up(n);
  if (capacity == 0) return nullptr;
  if (capacity <= kLargestCached && !lists_gone) {
    Lists& l = lists();
    const int c = class_of(static_cast<std::uint64_t>(capacity));
    if (FreeBlock* b = l.head[c]; b != nullptr) {
      l.head[c] = b->next;
      --l.count[c];
      return b;
    }
  }
  return fresh(capacity);
}

void release(void* p) {
  if (p == nullptr) return;
  const std::uint64_t capacity = capacity_of(p);
  if (capacity <= kLargestCached && !lists_gone) {
    Lists& l = lists();
    const int c = class_of(capacity);
    if (l.count[c] < kCachedPerClass) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = l.head[c];
      l.head[c] = b;
      ++l.count[c];
      return;
    }
  }
  std::free(static_cast<unsigned char*>(p) - kHeader);
}

void* reallocate(void* p, int n) {
  if (p == nullptr) return allocate(n);
  if (n <= 0) {  // as realloc(p, 0) on glibc (SQLite frees before it gets here)
    release(p);
    return nullptr;
  }
  const std::uint64_t capacity = capacity_of(p);
  const int wanted = round_up(n);
  if (wanted == 0) return nullptr;
  if (static_cast<std::uint64_t>(wanted) <= capacity) return p;
  if (capacity > kLargestCached) {  // large to larger: realloc may grow in place
    auto* raw = static_cast<unsigned char*>(std::realloc(
        static_cast<unsigned char*>(p) - kHeader, kHeader + static_cast<std::size_t>(wanted)));
    if (raw == nullptr) return nullptr;
    *reinterpret_cast<std::uint64_t*>(raw) = static_cast<std::uint64_t>(wanted);
    return raw + kHeader;
  }
  void* q = allocate(n);
  if (q == nullptr) return nullptr;  // p stays valid, as with realloc()
  std::memcpy(q, p, capacity);
  release(p);
  return q;
}

int size_of(void* p) {
  return p == nullptr ? 0 : static_cast<int>(capacity_of(p));
}

int init(void* /*app*/) {
  return SQLITE_OK;
}

void shutdown(void* /*app*/) {}

const sqlite3_mem_methods kMethods = {allocate, release, reallocate, size_of,
                                      round_up, init,    shutdown,   nullptr};

}  // namespace

const sqlite3_mem_methods& cached_memory_methods() noexcept {
  return kMethods;
}

int cached_blocks_on_this_thread() noexcept {
  if (lists_gone) return 0;
  const Lists& l = lists();
  int n = 0;
  for (const int c : l.count) n += c;
  return n;
}

}  // namespace errand::store::sqlite
