# `cmake --install build/release --prefix /usr/local` puts in place:
#   include/errand/...                    the public headers
#   lib/liberrand.a                       the library
#   bin/errand                            the program (when built)
#   lib/cmake/errand/errandConfig.cmake   for find_package(errand CONFIG REQUIRED)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS errand EXPORT errandTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/errand
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET errand_cli)
  install(TARGETS errand_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(errand_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/errand)
install(EXPORT errandTargets NAMESPACE errand:: DESTINATION ${errand_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/errandConfig.cmake.in
  ${PROJECT_BINARY_DIR}/errandConfig.cmake INSTALL_DESTINATION ${errand_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/errandConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/errandConfig.cmake
  ${PROJECT_BINARY_DIR}/errandConfigVersion.cmake DESTINATION ${errand_cmake_dir})
