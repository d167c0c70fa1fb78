# Kiln's runtime for 64-bit ARM Linux (kilnc build --target=arm-64-linux):
# a second, cross-compiled build of runtime/ (cmake/runtime-cross) into
# ROOT/lib/kiln/aarch64-linux-gnu/, next to the native one. Built when the
# Debian cross compilers and the arm64 zlib (Debian multiarch) are found;
# `scripts/install-deps.sh build` installs them.
set(KILN_AARCH64_RUNTIME AUTO CACHE STRING
    "Build the aarch64-linux-gnu runtime: AUTO (when its tools are found), ON or OFF")
set_property(CACHE KILN_AARCH64_RUNTIME PROPERTY STRINGS AUTO ON OFF)

# The ExternalProject targets, and the triples whose runtime they build.
set(KILN_CROSS_RUNTIME_TARGETS)
set(KILN_CROSS_RUNTIME_TRIPLES)
if(NOT KILN_AARCH64_RUNTIME STREQUAL "OFF")
  find_program(KILN_AARCH64_CC aarch64-linux-gnu-gcc)
  find_program(KILN_AARCH64_CXX aarch64-linux-gnu-g++)
  find_library(KILN_AARCH64_ZLIB NAMES libz.a libz.so
               PATHS /usr/lib/aarch64-linux-gnu NO_DEFAULT_PATH)
  set(missing)
  if(NOT KILN_AARCH64_CC)
    list(APPEND missing gcc-aarch64-linux-gnu)
  endif()
  if(NOT KILN_AARCH64_CXX)
    list(APPEND missing g++-aarch64-linux-gnu)
  endif()
  if(NOT KILN_AARCH64_ZLIB)
    list(APPEND missing zlib1g-dev:arm64)
  endif()
  if(missing)
    list(JOIN missing " " missing)
    set(why "the aarch64 runtime needs the Debian packages: ${missing} (scripts/install-deps.sh build)")
    if(KILN_AARCH64_RUNTIME STREQUAL "ON")
      message(FATAL_ERROR "Kiln: ${why}")
    endif()
    message(STATUS "Kiln: no aarch64 runtime, --target=arm-64-linux cannot link: ${why}")
  else()
    include(ExternalProject)
    set(dir "${CMAKE_BINARY_DIR}/lib/kiln/aarch64-linux-gnu")
    set(launcher)
    if(CCACHE_PROGRAM)
      set(launcher -DCMAKE_C_COMPILER_LAUNCHER=${CCACHE_PROGRAM}
                   -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE_PROGRAM})
    endif()
    ExternalProject_Add(kiln_runtime_aarch64
      SOURCE_DIR "${PROJECT_SOURCE_DIR}/cmake/runtime-cross"
      BINARY_DIR "${CMAKE_BINARY_DIR}/runtime-aarch64"
      CMAKE_ARGS
        "-DCMAKE_TOOLCHAIN_FILE=${PROJECT_SOURCE_DIR}/cmake/aarch64-linux-gnu.cmake"
        -DCMAKE_BUILD_TYPE=Release
        "-DKILN_RUNTIME_OUTPUT_DIR=${dir}"
        "-DKILN_HALIDE_RUNTIME_INCLUDE_DIR=${KILN_HALIDE_RUNTIME_INCLUDE_DIR}"
        ${launcher}
      # The runtime's sources are not this project's: rebuild (a no-op when
      # nothing changed) on every build.
      BUILD_ALWAYS ON
      INSTALL_COMMAND ""
      BUILD_BYPRODUCTS "${dir}/libkiln_runtime_model.a" "${dir}/libkiln_runtime.a")
    list(APPEND KILN_CROSS_RUNTIME_TARGETS kiln_runtime_aarch64)
    list(APPEND KILN_CROSS_RUNTIME_TRIPLES aarch64-linux-gnu)
    message(STATUS "Kiln: building the aarch64-linux-gnu runtime with ${KILN_AARCH64_CC}")
  endif()
endif()
