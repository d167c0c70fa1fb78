# The layout kilnc reads its runtime from, relative to its own executable
# (compiler/include/kiln/Driver/Toolchain.h). With ROOT the build tree or an
# install prefix:
#   ROOT/bin/kilnc
#   ROOT/include/kiln/runtime/*.h        the runtime's C API
#   ROOT/include/kiln/halide/HalideRuntime.h
#   ROOT/lib/kiln/<triple>/              per target machine: libkiln_runtime_model.a
#                                        (linked into every model), libkiln_runtime.a
#                                        (the runner of executables)
#   ROOT/lib/cmake/Kiln/KilnConfig.cmake
# The build tree is laid out exactly like an install, so one lookup serves
# both and nothing needs a path of the source or build tree compiled in.

# kiln_place_runtime(DIR): the archives kilnc links (kiln_runtime_model,
# kiln_runtime) of this project go to DIR.
function(kiln_place_runtime dir)
  set_target_properties(kiln_runtime_model kiln_runtime PROPERTIES
    ARCHIVE_OUTPUT_DIRECTORY "${dir}")
endfunction()

# kiln_stage_headers(ROOT HALIDE_RUNTIME_HEADER): copies the runtime's
# headers and Halide's runtime header to ROOT/include/kiln (target
# kiln_runtime_headers), as the install does.
function(kiln_stage_headers root halide_header)
  set(source "${PROJECT_SOURCE_DIR}/runtime/include")
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE "${source}" "${source}/kiln/*.h")
  set(staged)
  foreach(header IN LISTS headers)
    add_custom_command(
      OUTPUT "${root}/include/${header}"
      COMMAND ${CMAKE_COMMAND} -E copy "${source}/${header}" "${root}/include/${header}"
      DEPENDS "${source}/${header}"
      VERBATIM)
    list(APPEND staged "${root}/include/${header}")
  endforeach()
  set(halide "${root}/include/kiln/halide/HalideRuntime.h")
  add_custom_command(
    OUTPUT "${halide}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${root}/include/kiln/halide"
    COMMAND ${CMAKE_COMMAND} -E copy "${halide_header}" "${halide}"
    DEPENDS "${halide_header}"
    VERBATIM)
  add_custom_target(kiln_runtime_headers ALL DEPENDS ${staged} "${halide}"
    COMMENT "Staging the runtime headers in ${root}/include")
endfunction()
