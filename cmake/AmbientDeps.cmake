# Finds ambient's dependencies, all from Debian packages by default.
# Included by the top-level CMakeLists.txt and (as a copy) by the installed
# ambientConfig.cmake, so consumers of the static libraries resolve the same
# imported targets.

find_package(absl 20220623 REQUIRED CONFIG)
find_package(Protobuf 3.21 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET GLOBAL libnghttp2>=1.52)

# The TLS library: AMBIENT_TLS=boringssl (the default) or openssl. The two
# export the same symbol names, so a process can hold only one of them; pick
# openssl to embed ambient in a process that already links OpenSSL 3 (nginx,
# HAProxy, Python, most proxies). Whichever is picked, the code links the
# neutral targets AmbientTLS::ssl and AmbientTLS::crypto, and
# AMBIENT_TLS_LIBRARY_DIR names the directory holding libssl/libcrypto.
if(NOT DEFINED AMBIENT_TLS)
  set(AMBIENT_TLS boringssl CACHE STRING "TLS library: boringssl or openssl (OpenSSL 3)")
endif()
if(DEFINED CACHE{AMBIENT_TLS})
  set_property(CACHE AMBIENT_TLS PROPERTY STRINGS boringssl openssl)
endif()
if(AMBIENT_TLS STREQUAL "openssl")
  # Debian's libssl-dev. Only OpenSSL 3 is accepted: the backend uses the 3.0
  # API (EVP_PKEY_get_*, SSL_get1_peer_certificate) and no deprecated call.
  find_package(OpenSSL 3.0 REQUIRED)
  if(NOT OPENSSL_VERSION VERSION_GREATER_EQUAL 3.0)
    message(FATAL_ERROR "AMBIENT_TLS=openssl needs OpenSSL 3 (found ${OPENSSL_VERSION})")
  endif()
  if(EXISTS "${OPENSSL_INCLUDE_DIR}/openssl/is_boringssl.h")
    message(FATAL_ERROR "AMBIENT_TLS=openssl found BoringSSL headers in ${OPENSSL_INCLUDE_DIR}")
  endif()
  if(NOT TARGET AmbientTLS::crypto)
    add_library(AmbientTLS::crypto INTERFACE IMPORTED GLOBAL)
    set_target_properties(AmbientTLS::crypto PROPERTIES INTERFACE_LINK_LIBRARIES OpenSSL::Crypto)
    add_library(AmbientTLS::ssl INTERFACE IMPORTED GLOBAL)
    set_target_properties(AmbientTLS::ssl PROPERTIES INTERFACE_LINK_LIBRARIES "OpenSSL::SSL;OpenSSL::Crypto")
  endif()
  get_filename_component(AMBIENT_TLS_LIBRARY_DIR "${OPENSSL_SSL_LIBRARY}" DIRECTORY)
  return()
elseif(NOT AMBIENT_TLS STREQUAL "boringssl")
  message(FATAL_ERROR "AMBIENT_TLS must be boringssl or openssl, not \"${AMBIENT_TLS}\"")
endif()

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
    "OpenSSL is never picked up by this build (configure with -DAMBIENT_TLS=openssl to use it).")
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
  add_library(AmbientTLS::crypto INTERFACE IMPORTED GLOBAL)
  set_target_properties(AmbientTLS::crypto PROPERTIES INTERFACE_LINK_LIBRARIES BoringSSL::crypto)
  add_library(AmbientTLS::ssl INTERFACE IMPORTED GLOBAL)
  set_target_properties(AmbientTLS::ssl PROPERTIES INTERFACE_LINK_LIBRARIES BoringSSL::ssl)
endif()
get_filename_component(BORINGSSL_LIBRARY_DIR "${BORINGSSL_SSL_LIBRARY}" DIRECTORY)
set(AMBIENT_TLS_LIBRARY_DIR "${BORINGSSL_LIBRARY_DIR}")
