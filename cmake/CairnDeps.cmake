# Every outside library, found once, exposed as an imported target.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
# Boost 1.81 from libboost1.81-dev (not Debian's default 1.74). Asio and its
# SSL layer are header-only: lib/net links Boost::headers.
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS json url)

pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# journald (logging under systemd) and sd_notify.
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)

find_path(RSYNC_INCLUDE_DIR librsync.h REQUIRED)
find_library(RSYNC_LIBRARY rsync REQUIRED)
add_library(cairn::rsync UNKNOWN IMPORTED)
set_target_properties(cairn::rsync PROPERTIES IMPORTED_LOCATION ${RSYNC_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${RSYNC_INCLUDE_DIR})

if(CAIRN_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(CAIRN_BUILD_BENCH AND NOT CAIRN_FUZZ)
  find_package(benchmark REQUIRED)
endif()
