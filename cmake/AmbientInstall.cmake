# Install rules: headers, the layer static libraries, libambient.{so,a}, the
# CMake package (ambientConfig.cmake, exported targets ambient::ambient,
# ambient::ambient_static and ambient::<layer>) and ambient.pc.
include(CMakePackageConfigHelpers)

get_property(_layers GLOBAL PROPERTY AMBIENT_LAYERS)
set(_layer_targets)
foreach(l IN LISTS _layers)
  list(APPEND _layer_targets ambient_${l})
endforeach()

install(DIRECTORY include/ambient DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/include/ambient/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ambient)

install(TARGETS ambient ambient_static ${_layer_targets}
        EXPORT ambientTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ambientTargets NAMESPACE ambient::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ambient)

configure_package_config_file(cmake/ambientConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ambientConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ambient)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ambientConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ambientConfig.cmake
              ${PROJECT_BINARY_DIR}/ambientConfigVersion.cmake
              cmake/AmbientDeps.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ambient)

# ambient.pc finds its prefix relative to itself, so the install is relocatable.
file(RELATIVE_PATH AMBIENT_PC_TO_PREFIX
  "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
configure_file(cmake/ambient.pc.in ${PROJECT_BINARY_DIR}/ambient.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ambient.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The license and the notice about third-party test data, next to the docs.
install(FILES LICENSE NOTICE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The build tree's own pkg-config file (not installed): scripts/test-bindings.sh
# points PKG_CONFIG_PATH at it.
configure_file(cmake/ambient-uninstalled.pc.in
  ${PROJECT_BINARY_DIR}/pkgconfig/ambient-uninstalled.pc @ONLY)
