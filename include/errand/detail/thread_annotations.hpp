#pragma once
// Clang thread-safety annotations (-Wthread-safety) and a std::mutex that
// carries them, as Abseil and LevelDB do. `int n ERRAND_GUARDED_BY(mu_);`
// makes the compiler check that every access to `n` holds `mu_`; under other
// compilers the macros expand to nothing. CI compiles the library with
// `clang++ -Wthread-safety -Werror` (scripts/thread-safety).
//
// Mutex and MutexLock are drop-in for std::mutex and std::lock_guard /
// std::unique_lock; MutexLock also waits on a std::condition_variable. A
// predicate that reads guarded state declares what it holds:
//   lock.wait(cv_, [&]() ERRAND_REQUIRES(mu_) { return !queue_.empty(); });

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#if defined(__clang__)
#define ERRAND_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ERRAND_THREAD_ANNOTATION(x)
#endif

#define ERRAND_CAPABILITY(x) ERRAND_THREAD_ANNOTATION(capability(x))
#define ERRAND_SCOPED_CAPABILITY ERRAND_THREAD_ANNOTATION(scoped_lockable)
#define ERRAND_GUARDED_BY(x) ERRAND_THREAD_ANNOTATION(guarded_by(x))
#define ERRAND_PT_GUARDED_BY(x) ERRAND_THREAD_ANNOTATION(pt_guarded_by(x))
#define ERRAND_REQUIRES(...) ERRAND_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ERRAND_ACQUIRE(...) ERRAND_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ERRAND_RELEASE(...) ERRAND_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ERRAND_TRY_ACQUIRE(...) ERRAND_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ERRAND_EXCLUDES(...) ERRAND_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ERRAND_RETURN_CAPABILITY(x) ERRAND_THREAD_ANNOTATION(lock_returned(x))
#define ERRAND_NO_THREAD_SAFETY_ANALYSIS ERRAND_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace errand::detail {

class ERRAND_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ERRAND_ACQUIRE() { mu_.lock(); }
  void unlock() ERRAND_RELEASE() { mu_.unlock(); }
  bool try_lock() ERRAND_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds the mutex for its scope; may wait on a condition variable, which
// releases and re-takes it (the analysis sees it held throughout, which is
// what the code after the wait may assume).
class ERRAND_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ERRAND_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() ERRAND_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Waits on a std::condition_variable or std::condition_variable_any (the
  // latter with a stop_token too); the arguments are the condition
  // variable's own after the lock.
  template <class Cv, class... Args>
  decltype(auto) wait(Cv& cv, Args&&... args) {
    return cv.wait(lock_, std::forward<Args>(args)...);
  }
  template <class Cv, class... Args>
  decltype(auto) wait_for(Cv& cv, Args&&... args) {
    return cv.wait_for(lock_, std::forward<Args>(args)...);
  }
  // Releases the mutex before the end of the scope.
  void unlock() ERRAND_RELEASE() { lock_.unlock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace errand::detail
