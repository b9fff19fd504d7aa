# Compiler options shared by every errand target (errand_options is an
# INTERFACE target so that warnings and sanitizers never leak to users).
add_library(errand_options INTERFACE)
target_compile_options(errand_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough -Wmisleading-indentation)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(errand_options INTERFACE -Wduplicated-cond -Wlogical-op)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 reports impossible memcpy bounds inside libstdc++ at -O3 (GCC PR 105651).
  target_compile_options(errand_options INTERFACE -Wno-stringop-overflow -Wno-restrict -Wno-array-bounds)
endif()
if(CMAKE_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # A unity build (scripts/test: fewer, larger translation units) includes
  # each .cpp into a generated one, and GCC then reads a class whose member's
  # type is in an anonymous namespace as a header's class: a false alarm here.
  target_compile_options(errand_options INTERFACE -Wno-subobject-linkage)
endif()
if(ERRAND_WERROR)
  target_compile_options(errand_options INTERFACE -Werror)
endif()
if(ERRAND_SANITIZE)
  target_compile_options(errand_options INTERFACE
    -fsanitize=${ERRAND_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(errand_options INTERFACE -fsanitize=${ERRAND_SANITIZE})
  if(ERRAND_SANITIZE MATCHES "(^|,)address(,|$)")
    # Position-dependent executables: a PIE ASan test binary spent half of
    # its 0.3 s start in the loader, writing 1.6 million relative
    # relocations (ASan's descriptors of globals among them) into pages it
    # faults in; CI starts ~700 of them (one per test, and the CLI). Debian's
    # compilers build PIE by default; -no-pie links the same objects.
    target_link_options(errand_options INTERFACE -no-pie)
  endif()
  if(ERRAND_SANITIZE MATCHES "thread")
    # GCC warns that TSan does not model atomic_thread_fence, which Asio's
    # handler allocator uses; TSan still checks every access around it.
    target_compile_options(errand_options INTERFACE -Wno-tsan)
  endif()
endif()

if(ERRAND_FUZZ)
  # Coverage for libFuzzer in everything errand compiles; the fuzz targets
  # themselves link with -fsanitize=fuzzer (fuzz/CMakeLists.txt).
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ERRAND_FUZZ needs clang (libFuzzer): use the fuzz preset")
  endif()
  target_compile_options(errand_options INTERFACE -fsanitize=fuzzer-no-link)
endif()

# Helper for test executables: one binary per test folder, discovered by CTest.
function(errand_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE errand::errand errand_options errand_test_support
                        GTest::gtest_main ${ARG_LIBS})
  target_precompile_headers(${name} REUSE_FROM errand_test_pch)
  # PRE_TEST: each binary lists its tests when ctest starts, not as a build
  # step right after its link, where the listing of a fresh 200 MB ASan
  # binary competed with the compiler (about 2 minutes of a CI build).
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 120
                       DISCOVERY_TIMEOUT 60 DISCOVERY_MODE PRE_TEST)
endfunction()
