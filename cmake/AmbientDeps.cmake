# Finds ambient's dependencies, all from Debian packages by default.
# Included by the top-level CMakeLists.txt and (as a copy) by the installed
# ambientConfig.cmake, so consumers of the static libraries resolve the same
# imported targets.

find_package(absl 20220623 REQUIRED CONFIG)
find_package(Protobuf 3.21 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET GLOBAL libnghttp2>=1.52)

# BoringSSL. Debian ships it (android-libboringssl-dev) without pkg-config or
# CMake files, so it is found by hand. The marker header is_boringssl.h and
# NO_DEFAULT_PATH make sure OpenSSL 3 can never be picked up instead. Point
# BORINGSSL_ROOT (or the two *_HINT variables) at your own BoringSSL build to
# use it: include/ and lib/ (or the build dir holding libssl/libcrypto).
set(BORINGSSL_ROOT "" CACHE PATH "Root of a BoringSSL build or install (empty: Debian's)")
if(BORINGSSL_ROOT)
  set(_ambient_bssl_inc_default "${BORINGSSL_ROOT}/include")
  set(_ambient_bssl_lib_default "${BORINGSSL_ROOT}/lib;${BORINGSSL_ROOT}/build;${BORINGSSL_ROOT}")
else()
  if(NOT CMAKE_LIBRARY_ARCHITECTURE)
    set(CMAKE_LIBRARY_ARCHITECTURE x86_64-linux-gnu)
  endif()
  set(_ambient_bssl_inc_default /usr/include/android)
  set(_ambient_bssl_lib_default /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android)
endif()
set(BORINGSSL_INCLUDE_HINT "${_ambient_bssl_inc_default}" CACHE PATH "BoringSSL include root")
set(BORINGSSL_LIB_HINT "${_ambient_bssl_lib_default}" CACHE PATH "BoringSSL library dir")
find_path(BORINGSSL_INCLUDE_DIR openssl/is_boringssl.h HINTS ${BORINGSSL_INCLUDE_HINT} NO_DEFAULT_PATH)
find_library(BORINGSSL_SSL_LIBRARY NAMES ssl HINTS ${BORINGSSL_LIB_HINT} PATH_SUFFIXES ssl NO_DEFAULT_PATH)
find_library(BORINGSSL_CRYPTO_LIBRARY NAMES crypto HINTS ${BORINGSSL_LIB_HINT} PATH_SUFFIXES crypto NO_DEFAULT_PATH)
if(NOT BORINGSSL_INCLUDE_DIR OR NOT BORINGSSL_SSL_LIBRARY OR NOT BORINGSSL_CRYPTO_LIBRARY)
  message(FATAL_ERROR
    "BoringSSL not found (apt-get install android-libboringssl-dev, or set BORINGSSL_ROOT). "
    "OpenSSL is deliberately never used.")
endif()
if(NOT TARGET BoringSSL::crypto)
  add_library(BoringSSL::crypto UNKNOWN IMPORTED GLOBAL)
  set_target_properties(BoringSSL::crypto PROPERTIES
    IMPORTED_LOCATION "${BORINGSSL_CRYPTO_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${BORINGSSL_INCLUDE_DIR}")
  add_library(BoringSSL::ssl UNKNOWN IMPORTED GLOBAL)
  set_target_properties(BoringSSL::ssl PROPERTIES
    IMPORTED_LOCATION "${BORINGSSL_SSL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${BORINGSSL_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES BoringSSL::crypto)
endif()
get_filename_component(BORINGSSL_LIBRARY_DIR "${BORINGSSL_SSL_LIBRARY}" DIRECTORY)
